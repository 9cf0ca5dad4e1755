"""host-gw pod routing (the notes' "direct routing"): every node routes each other node's pod
CIDR via that node's address, plus DESIGN.md section 7's catch-all routes (docs/hostgw.md)."""
