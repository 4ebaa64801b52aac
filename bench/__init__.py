"""`make bench`: the ring measured against the Chord paper, the loopback limit and kademlia."""
