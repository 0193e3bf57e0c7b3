// Types of the shardz package for Node.js (docs/PROTOCOL.md). Revisions and generations are
// BigInt: they pass 2^53.
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Cause = 'assign' | 'lease' | 'release';
export const CAUSE_ASSIGN: 'assign';
export const CAUSE_LEASE: 'lease';
export const CAUSE_RELEASE: 'release';

/** What a hook is told about one partition replica. */
export interface Replica {
  namespace: string;
  node: string;
  partition: string;
  slot: number;
  role: string; // "none" | "primary" | "secondary"
  state: string; // "adding" | "serving" | "dropping"
  generation: bigint; // fencing token: accept writes only with the highest seen
  revision: bigint; // the assignment's revision
  range: { lo: string; hi: string | null } | null; // range namespaces: [lo, hi), hi null = +inf
  update: boolean; // serve of a partition already served (generation or role changed)
  oldGeneration: bigint;
  cause: Cause;
  /** State transfer: the node an adding replica comes from, and its address; null: none. */
  from: { node: string; address: string } | null;
}

export interface WorkerConfig {
  /** "host:port" of each coordinator (several for HA), as an array or "h1:p1,h2:p2". */
  coordinators: string | string[];
  namespace: string;
  nodeId: string;
  /** host:port the coordinator reaches this worker at; default: the listener's bound address. */
  address?: string;
  /** host:port for the worker's own listener; leave out and mount handler() instead. */
  listen?: string;
  zone?: string;
  capacity?: Record<string, number>;
  secret?: string;
  /** Start serving (or, with update, a new generation or role). Throw or reject to refuse:
   * the coordinator retries later. Never two hooks at once. */
  serve(r: Replica): void | Promise<void>;
  /** Stop serving. A failure is reported, but the replica counts as gone. */
  delete(r: Replica): void | Promise<void>;
  /** 'auto' (the namespace's consistency; unknown counts as strict), 'on' or 'off'. */
  lease?: 'auto' | 'on' | 'off';
  leaseMarginMs?: number; // default 2 * leaseCheckMs + lease / 10
  leaseCheckMs?: number; // default 25
  requestTimeoutMs?: number; // default 5000
  backoffMaxMs?: number; // default 2000
  reregisterAfterMs?: number; // default max(10 pings, 3000)
  /** Monotonic clock in ms for the lease and the stamps (tests inject one); default
   * performance.now (Node has no CLOCK_BOOTTIME: a suspend is not counted). */
  now?: () => number;
  log?: (level: 'info' | 'warn', message: string) => void;
}

export interface WorkerStatus {
  registered: boolean;
  leaving: boolean;
  released: boolean;
  leaseEnforced: boolean;
  appliedRevision: bigint;
  pingIntervalMs: number;
  leaseMs: number;
  serving: number;
  deltaAgreed: boolean;
  lastError: string;
  registrations: number;
  assignments: number;
  deltas: number;
  deltasRefused: number;
  leaseExpiries: number;
}

export class Worker {
  constructor(cfg: WorkerConfig);
  readonly address: string;
  start(): Promise<void>;
  /** node:http handler for POST /shardz/v1/ping and /shardz/v1/assign. */
  handler(req: IncomingMessage, res: ServerResponse): void;
  waitRegistered(timeoutMs?: number): Promise<void>;
  reportLoad(partition: string, dimension: string, value: number): void;
  reportSplitKey(partition: string, key: string): void;
  /** From a serve hook: the replica serves but is not ready until ready() (state transfer). */
  notReady(partition: string): void;
  ready(partition: string, generation: bigint): void;
  leaseOk(): boolean;
  leave(timeoutMs?: number): Promise<void>;
  status(): WorkerStatus;
  stop(): Promise<void>;
}

export interface RouteReplica {
  readonly node: string;
  readonly address: string;
  readonly nodeState: string;
  readonly slot: number;
  readonly role: string;
  readonly state: string;
  readonly generation: bigint;
}

export interface Route {
  readonly partition: string;
  readonly generation: bigint;
  readonly replicas: readonly RouteReplica[];
  /** Index of the replica to send to: the serving primary, else the first serving; -1: none. */
  readonly target: number;
  readonly range: { readonly lo: string; readonly hi: string | null } | null;
  readonly routed: boolean;
}

export class Snapshot {
  constructor(state: string | object, opts?: { sharder?: string; slots?: number });
  readonly namespace: string;
  readonly revision: bigint;
  readonly sharder: string;
  readonly slots: number;
  partitions(): readonly Route[];
  lookupPartition(id: string): Route | null;
  lookupKey(key: string): { route: Route | null; slot: number };
}

export interface RouterConfig {
  coordinators: string | string[];
  namespace: string;
  secret?: string;
  watchTimeoutMs?: number; // default 30000
  requestTimeoutMs?: number; // default 5000
  log?: (level: 'info' | 'warn', message: string) => void;
}

export class Router {
  constructor(cfg: RouterConfig);
  start(timeoutMs?: number): Promise<void>;
  snapshot(): Snapshot | null;
  readonly revision: bigint;
  lookupKey(key: string): { route: Route | null; slot: number };
  lookupPartition(id: string): Route | null;
  waitRevision(rev: bigint | number, timeoutMs?: number): Promise<void>;
  install(snap: Snapshot): void;
  stop(): Promise<void>;
}

export interface ClientConfig {
  coordinators: string | string[];
  secret?: string;
  timeoutMs?: number; // default 10000
}

/** Replies are the coordinator's JSON (docs/PROTOCOL.md), integers as BigInt. */
export class Client {
  constructor(cfg: ClientConfig);
  request(method: string, path: string, body?: object | null): Promise<any>;
  status(): Promise<any>;
  createNamespace(config: object): Promise<any>;
  namespaces(): Promise<any[]>;
  namespace(name: string): Promise<any>;
  deleteNamespace(name: string): Promise<any>;
  addPartitions(ns: string, ids: string[]): Promise<any>;
  nodes(ns: string): Promise<{ nodes: any[]; revision: bigint }>;
  node(ns: string, id: string): Promise<any>;
  partition(ns: string, pid: string): Promise<any>;
  drain(ns: string, id: string): Promise<any>;
  undrain(ns: string, id: string): Promise<any>;
  move(ns: string, pid: string, slot: number, to: string): Promise<any>;
  close(): void;
}

export class ShardzError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly body: string;
}

export function hashTag<K extends string | Uint8Array>(key: K): K;
export function xxh3(bytes: string | Uint8Array): bigint;
export function keyHash(key: string | Uint8Array): bigint;
export function keySlot(key: string | Uint8Array, slots: number): number;
export function parseJSON(text: string): any;
export function toJSON(value: unknown): string;
