// Errors: the protocol's error codes (docs/PROTOCOL.md section 1) with their HTTP statuses, and
// the error a coordinator's non-2xx reply becomes. Pure; no goroutines.
package shardz

import (
	"encoding/json"
	"fmt"
)

// Error codes of the protocol, with the HTTP status each is answered with.
var errorStatus = map[string]int{
	"EINVAL": 400, "ENOMEM": 503, "ENOENT": 404, "EEXIST": 409, "ENOSPC": 409, "ESTALE": 409,
	"ENOTSUP": 400, "ERANGE": 400, "EIO": 500, "ETIMEDOUT": 504, "EBUSY": 409, "EPROTO": 400,
	"ETOOBIG": 413, "ENOTLEADER": 503, "ECONFLICT": 409,
}

// APIError is a non-2xx reply: the HTTP status and the body's code and message.
type APIError struct {
	Status  int    // HTTP status
	Code    string // "EINVAL", ...; "" when the body had none
	Message string
	Body    []byte // the reply body as received
}

func (e *APIError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("shardz: HTTP %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("shardz: HTTP %d: %.200s", e.Status, e.Body)
}

func newAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status, Body: body}
	var b struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &b) == nil {
		e.Code, e.Message = b.Code, b.Message
	}
	return e
}

// protoError is a message refused by the worker endpoint: answered with its code's status.
type protoError struct {
	code string
	msg  string
}

func (e *protoError) Error() string { return e.code + ": " + e.msg }

func perr(code, format string, args ...interface{}) *protoError {
	return &protoError{code: code, msg: fmt.Sprintf(format, args...)}
}

func errorBody(code, msg string) []byte {
	b, _ := json.Marshal(map[string]string{"code": code, "message": msg})
	return b
}
