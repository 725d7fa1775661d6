// Package sandbox holds simulators of the systems syncd talks to: a
// discipline-inspection source (纪检监察 HTTP API) that serves decisions page by
// page, and a provincial credit platform (信用辽宁-like, GB/T 39443 service
// style) that accepts pushed records and answers with per-record receipts.
//
// Both are plain http.Handlers, so `make run` mounts them in one process
// (cmd/syncd-sandbox) and integration tests start them in-process with
// httptest on 127.0.0.1:0. Both inject faults on demand (slow answers, 500s,
// connections dropped mid-body, simulated rejections) with a seeded random
// source so a failing test can be replayed.
//
// The simulators are stand-ins for outside systems: they must not depend on
// any other syncd package, so a bug in syncd cannot be mirrored by the
// simulator meant to expose it.
package sandbox
