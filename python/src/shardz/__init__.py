"""shardz: a pure-Python worker, router and operator client for the shardz coordinator
(docs/PROTOCOL.md). Standard library at run time, plus xxhash for key routing."""
from .client import Client
from .errors import ProtocolError, ShardzError
from .keyhash import hashtag, key_hash, key_slot
from .router import Route, RouteReplica, Router, Snapshot
from .worker import CAUSE_ASSIGN, CAUSE_LEASE, CAUSE_RELEASE, HookError, Replica, Worker

__all__ = ["Client", "ShardzError", "ProtocolError", "hashtag", "key_hash", "key_slot", "Route",
           "RouteReplica", "Router", "Snapshot", "Worker", "Replica", "HookError",
           "CAUSE_ASSIGN", "CAUSE_LEASE", "CAUSE_RELEASE"]
__version__ = "0.1.0"
