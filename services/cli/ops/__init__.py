"""What pinctl's workload commands do, apart from argparse: each module takes a connected
client and plain arguments, so tests drive the behaviour against a real apiserver directly."""
