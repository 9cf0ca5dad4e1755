from services.proxy.cleanup import cleanup_script, is_any_chain, is_iptables_chain, is_userspace_chain

SAVE = """*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-PORTALS-CONTAINER - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAA - [0:0]
:MINE - [0:0]
-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -j MINE
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-AAAA
-A MINE -j KUBE-SERVICES
COMMIT
"""


def test_switching_to_iptables_mode_removes_only_userspace_chains() -> None:
    script = cleanup_script("nat", SAVE, is_userspace_chain).splitlines()
    assert script == [
        "*nat",
        ":KUBE-PORTALS-CONTAINER - [0:0]",
        '-D PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" '
        "-j KUBE-PORTALS-CONTAINER",
        "-X KUBE-PORTALS-CONTAINER",
        "COMMIT",
    ]


def test_iptables_mode_chains_and_every_jump_to_them() -> None:
    script = cleanup_script("nat", SAVE, is_iptables_chain).splitlines()
    assert ":KUBE-SERVICES - [0:0]" in script and ":KUBE-SVC-AAAA - [0:0]" in script
    assert "-D MINE -j KUBE-SERVICES" in script  # jumps from other chains go too
    assert not any("KUBE-SVC-AAAA" in line and line.startswith("-D") for line in script)  # flushed instead
    assert script[-3:] == ["-X KUBE-SERVICES", "-X KUBE-SVC-AAAA", "COMMIT"]
    assert "MINE" not in " ".join(line for line in script if line.startswith(("-X", ":")))


def test_nothing_owned_means_no_script() -> None:
    assert cleanup_script("filter", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", is_any_chain) == ""
