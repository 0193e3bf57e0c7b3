"""The operator API (docs/PROTOCOL.md sections 3, 8): namespaces, partitions, nodes, drain,
move, status. Every method is one request to the coordinators (tried in turn as the worker
does); it returns the parsed reply and raises ShardzError for an error reply. Thread-safe."""
from urllib.parse import quote

from ._http import Coordinators


def _q(s):
    return quote(str(s), safe="")


class Client:
    def __init__(self, coordinators, secret=None, timeout=10.0):
        self._coords = Coordinators(coordinators, secret, timeout)

    def call(self, method, path, body=None):
        """Any route: the parsed reply of a 2xx; ShardzError otherwise."""
        return self._coords.request(method, path, body)[1]

    # coordinator
    def status(self):
        return self.call("GET", "/v1/status")

    # namespaces
    def namespaces(self):
        return self.call("GET", "/v1/namespaces")["namespaces"]

    def namespace(self, name):
        return self.call("GET", f"/v1/namespaces/{_q(name)}")

    def create_namespace(self, name, **config):
        """config: the fields of docs/PROTOCOL.md section 3 (sharder, replicas, consistency,
        partitions, ...)."""
        return self.call("POST", "/v1/namespaces", dict(config, name=name))

    def delete_namespace(self, name):
        return self.call("DELETE", f"/v1/namespaces/{_q(name)}")

    # partitions
    def add_partitions(self, ns, ids):
        return self.call("POST", f"/v1/namespaces/{_q(ns)}/partitions", {"ids": list(ids)})

    def remove_partition(self, ns, pid):
        return self.call("DELETE", f"/v1/namespaces/{_q(ns)}/partitions/{_q(pid)}")

    def partitions(self, ns):
        return self.call("GET", f"/v1/namespaces/{_q(ns)}/partitions")

    def partition(self, ns, pid):
        return self.call("GET", f"/v1/namespaces/{_q(ns)}/partitions/{_q(pid)}")

    def lookup(self, ns, key):
        return self.call("GET", f"/v1/namespaces/{_q(ns)}/lookup?key={_q(key)}")

    def state(self, ns):
        return self.call("GET", f"/v1/namespaces/{_q(ns)}/state")

    # nodes
    def nodes(self, ns):
        return self.call("GET", f"/v1/namespaces/{_q(ns)}/nodes")["nodes"]

    def node(self, ns, node_id):
        return self.call("GET", f"/v1/namespaces/{_q(ns)}/nodes/{_q(node_id)}")

    def drain(self, ns, node_id):
        return self.call("POST", f"/v1/namespaces/{_q(ns)}/nodes/{_q(node_id)}/drain", {})

    def undrain(self, ns, node_id):
        return self.call("POST", f"/v1/namespaces/{_q(ns)}/nodes/{_q(node_id)}/undrain", {})

    # moves
    def move(self, ns, pid, slot, to):
        return self.call("POST", f"/v1/namespaces/{_q(ns)}/partitions/{_q(pid)}/move",
                         {"slot": slot, "to": to})

    def moves(self, ns):
        return self.call("GET", f"/v1/namespaces/{_q(ns)}/moves")["moves"]

    def cancel_move(self, ns, pid, slot):
        return self.call("DELETE", f"/v1/namespaces/{_q(ns)}/moves/{_q(pid)}/{int(slot)}")
