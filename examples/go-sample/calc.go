// Package calc is a tiny library the Go sample's coding agent works on. `go test ./...` runs its tests.
package calc

// Add adds two numbers.
func Add(a, b int) int {
	return a + b
}

// Subtract subtracts b from a.
func Subtract(a, b int) int {
	return a - b
}
