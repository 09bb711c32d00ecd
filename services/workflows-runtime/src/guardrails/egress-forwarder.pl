#!/usr/bin/perl
# Runs inside the sandbox with the system perl (perl-base, essential on Debian-based systems; it
# starts in a few milliseconds, where node takes tens), and only its core modules.
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
use warnings;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use POSIX qw(WNOHANG _exit);

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

# Where connections arrive, and where each one is relayed to.
my $listener;
my $connect;
if ($inbound) {
  unlink $socket_path;
  $listener = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $socket_path, Listen => 128) or fail("cannot listen on $socket_path: $!", 125);
  chmod 0600, $socket_path;
  $connect = sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') };
} else {
  $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 128, ReuseAddr => 1, Proto => 'tcp')
    or fail("cannot listen on 127.0.0.1:$port: $!", 125);
  $connect = sub { IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $socket_path) };
}
# A signal wakes the accept loop through this pipe, so the command's end is never missed.
pipe(my $wake_r, my $wake_w) or fail("pipe: $!", 125);
$wake_w->autoflush(1);
$SIG{CHLD} = sub { syswrite($wake_w, 'c') };

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
  { no warnings 'exec'; exec { $command[0] } @command; }
  my $code = $!{ENOENT} ? 127 : 126;
  print STDERR "egress-forwarder: $command[0]: $!\n";
  _exit($code);
}
# Relays one connection in a process of its own; half-closes follow the client and the other end.
sub relay {
  my ($client) = @_;
  my $upstream = $connect->();
  if (!$upstream) {
    # A clean close: FIN first, then read what the client sent until it closes too (closing with
    # unread data would reset the connection).
    shutdown($client, 1);
    my $drain = IO::Select->new($client);
    while ($drain->can_read(2)) {
      last unless sysread($client, my $buf, 65536);
    }
    close $client;
    _exit(0);
  }
  my $select = IO::Select->new($client, $upstream);
  my %peer = ($client => $upstream, $upstream => $client);
  while ($select->count) {
    for my $from ($select->can_read) {
      my $n = sysread($from, my $buf, 65536);
      if (!$n) {
        $select->remove($from);
        shutdown($peer{$from}, 1);
        next;
      }
      my $off = 0;
      while ($off < $n) {
        my $w = syswrite($peer{$from}, $buf, $n - $off, $off);
        _exit(0) unless defined $w;
        $off += $w;
      }
    }
  }
  _exit(0);
}

my $select = IO::Select->new($listener, $wake_r);
while (1) {
  for my $ready ($select->can_read) {
    if ($ready == $wake_r) {
      sysread($wake_r, my $drain, 4096);
      next;
    }
    my $client = $listener->accept or next;
    my $pid = fork();
    if (defined $pid && $pid == 0) {
      close $listener;
      $SIG{CHLD} = 'DEFAULT';
      relay($client);
    }
    close $client;
  }
  while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
    next unless $pid == $child;
    exit(($? & 127) ? 128 + ($? & 127) : $? >> 8);
  }
}
