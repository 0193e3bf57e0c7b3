// Errors: the protocol's codes with their HTTP statuses (docs/PROTOCOL.md section 1), and the
// error a coordinator's non-2xx reply becomes. Pure.
import { parseJSON } from './json.js';

export const ERROR_STATUS = {
  EINVAL: 400, ENOMEM: 503, ENOENT: 404, EEXIST: 409, ENOSPC: 409, ESTALE: 409, ENOTSUP: 400,
  ERANGE: 400, EIO: 500, ETIMEDOUT: 504, EBUSY: 409, EPROTO: 400, ETOOBIG: 413,
  ENOTLEADER: 503, ECONFLICT: 409,
};

/** A non-2xx reply from the coordinator: status, code ("EINVAL", ...) and message. */
export class ShardzError extends Error {
  constructor(status, code, message, body) {
    super(code ? `HTTP ${status} ${code}: ${message}` : `HTTP ${status}: ${String(body).slice(0, 200)}`);
    this.name = 'ShardzError';
    this.status = status;
    this.code = code || '';
    this.detail = message || '';
    this.body = body;
  }

  static fromReply(status, body) {
    let code = '';
    let message = '';
    try {
      const o = parseJSON(body);
      if (o && typeof o === 'object') {
        code = typeof o.code === 'string' ? o.code : '';
        message = typeof o.message === 'string' ? o.message : '';
      }
    } catch {
      // not JSON: keep the body
    }
    return new ShardzError(status, code, message, body);
  }
}

/** A message refused by the worker endpoint, answered with its code's status. */
export class ProtoError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }

  get status() {
    return ERROR_STATUS[this.code] ?? 500;
  }
}
