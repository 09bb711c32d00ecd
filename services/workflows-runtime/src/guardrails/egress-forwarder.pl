#!/usr/bin/perl
# Runs inside the sandbox with the system perl (perl-base, essential on Debian-based systems; it
# starts in a few milliseconds, where node takes tens). It loads no module at all: Socket, POSIX and
# IO::Socket would triple its start-up (about 15 ms of every online phase), so it uses perl's own
# socket and select built-ins with Linux's constants, which are the same on x86-64 and arm64.
#
# Usage: egress-forwarder.pl [--inbound] <port> <unixSocketPath> -- <command> [args...]
#
# Outbound (the default, online phases): the sandbox has only its own loopback, so HTTP clients in it
# are pointed at 127.0.0.1:<port>; this relays every such connection, byte for byte, to the worker's
# egress proxy on the mounted UNIX socket, where the allowlist is enforced.
#
# Inbound (--inbound, a local preview): the other way round. It listens on the UNIX socket (in a
# directory the worker mounted writable for it) and relays every connection the worker makes there
# to the command's server on 127.0.0.1:<port>. That socket is the sandbox's only way in; the sandbox
# still has no way out.
#
# Either way it listens first, then runs the command, and exits as the command did (128 + the
# signal when it was killed; 127 not found, 126 not executable, 125 usage).
use strict;

my ($AF_UNIX, $AF_INET, $SOCK_STREAM, $SOL_SOCKET, $SO_REUSEADDR, $WNOHANG, $ENOENT) = (1, 2, 1, 1, 2, 1, 2);

sub fail {
  my ($message, $code) = @_;
  print STDERR "egress-forwarder: $message\n";
  exit $code;
}

my $inbound = @ARGV && $ARGV[0] eq '--inbound' ? shift @ARGV : undef;
my ($port, $socket_path, $sep, @command) = @ARGV;
if (!defined $sep || $sep ne '--' || !@command || !defined $port || $port !~ /^\d+$/ || $port < 1 || $port > 65535 || !$socket_path) {
  fail('usage: egress-forwarder.pl [--inbound] <port> <unixSocketPath> -- <command> [args...]', 125);
}
fail("socket path too long: $socket_path", 125) if length($socket_path) > 107;

# struct sockaddr_un and struct sockaddr_in (127.0.0.1:<port>).
my $unix_addr = pack('S Z*', $AF_UNIX, $socket_path);
my $loopback = pack('S n C4 x8', $AF_INET, $port, 127, 0, 0, 1);
sub connected {
  my ($family, $addr) = @_;
  my $s;
  return socket($s, $family, $SOCK_STREAM, 0) && connect($s, $addr) ? $s : undef;
}

# Where connections arrive, and where each one is relayed to.
my $listener;
my $connect;
if ($inbound) {
  unlink $socket_path;
  (socket($listener, $AF_UNIX, $SOCK_STREAM, 0) && bind($listener, $unix_addr) && listen($listener, 128)) or fail("cannot listen on $socket_path: $!", 125);
  chmod 0600, $socket_path;
  $connect = sub { connected($AF_INET, $loopback) };
} else {
  (socket($listener, $AF_INET, $SOCK_STREAM, 0) && setsockopt($listener, $SOL_SOCKET, $SO_REUSEADDR, 1) && bind($listener, $loopback) && listen($listener, 128))
    or fail("cannot listen on 127.0.0.1:$port: $!", 125);
  $connect = sub { connected($AF_UNIX, $unix_addr) };
}
# A signal wakes the accept loop through this pipe, so the command's end is never missed.
pipe(my $wake_r, my $wake_w) or fail("pipe: $!", 125);
$SIG{CHLD} = sub { syswrite($wake_w, 'c') };

# Waits until one of the handles can be read (or a signal came: none), and says which.
sub readable {
  my ($timeout, @handles) = @_;
  my $in = '';
  vec($in, fileno($_), 1) = 1 for @handles;
  my $n = select(my $out = $in, undef, undef, $timeout);
  return $n > 0 ? grep { vec($out, fileno($_), 1) } @handles : ();
}

# Signals are forwarded to the command; the handlers are in place before it starts, so a signal
# that arrives as soon as the command runs is not lost (the command itself gets the defaults back).
my $child;
for my $sig (qw(TERM INT HUP)) {
  $SIG{$sig} = sub { kill $sig, $child if $child };
}
$child = fork();
fail("fork: $!", 125) unless defined $child;
if ($child == 0) {
  close $listener;
  close $wake_r;
  close $wake_w;
  $SIG{$_} = 'DEFAULT' for qw(CHLD TERM INT HUP);
  exec { $command[0] } @command;
  my $code = $! + 0 == $ENOENT ? 127 : 126;
  print STDERR "egress-forwarder: $command[0]: $!\n";
  exit $code;
}
# Relays one connection in a process of its own; half-closes follow the client and the other end.
sub relay {
  my ($client) = @_;
  my $upstream = $connect->();
  if (!$upstream) {
    # A clean close: FIN first, then read what the client sent until it closes too (closing with
    # unread data would reset the connection).
    shutdown($client, 1);
    while (readable(2, $client)) {
      last unless sysread($client, my $buf, 65536);
    }
    close $client;
    exit 0;
  }
  my %peer = (fileno($client) => $upstream, fileno($upstream) => $client);
  my @open = ($client, $upstream);
  while (@open) {
    for my $from (readable(undef, @open)) {
      my $to = $peer{fileno($from)};
      my $n = sysread($from, my $buf, 65536);
      if (!$n) {
        @open = grep { $_ != $from } @open;
        shutdown($to, 1);
        next;
      }
      my $off = 0;
      while ($off < $n) {
        my $w = syswrite($to, $buf, $n - $off, $off);
        exit 0 unless defined $w;
        $off += $w;
      }
    }
  }
  exit 0;
}

while (1) {
  for my $ready (readable(undef, $listener, $wake_r)) {
    if ($ready == $wake_r) {
      sysread($wake_r, my $drain, 4096);
      next;
    }
    accept(my $client, $listener) or next;
    my $pid = fork();
    if (defined $pid && $pid == 0) {
      close $listener;
      $SIG{CHLD} = 'DEFAULT';
      relay($client);
    }
    close $client;
  }
  while ((my $pid = waitpid(-1, $WNOHANG)) > 0) {
    next unless $pid == $child;
    exit(($? & 127) ? 128 + ($? & 127) : $? >> 8);
  }
}
