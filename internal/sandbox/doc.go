// Package sandbox holds simulators of the systems syncd talks to, the city
// syncd lives in:
//
//	source systems                          platforms
//	Discipline  纪检监察, HTTP/JSON API       National  全国信用信息共享平台, service style:
//	Court       法院, events on Kafka (kfake)           signed HTTP, CF_ schema, receipts
//	HR          人社, PostgreSQL tables        FrontDB   信用辽宁, database style (前置库):
//	Enforcement 综合执法局, GBK CSV/XLSX drops           front table + feedback table
//	                                        FilePlatform file exchange: batch files,
//	                                                  manifests, receipt files
//	                                        Platform  a bearer-token HTTP platform (tests)
//
// World starts them all together for `make run` (cmd/syncd-sandbox) and the
// end-to-end test; tests of one piece start it alone, in-process, on
// loopback. Every simulator injects faults on demand (slow answers, 500s,
// connections dropped mid-body, malformed rows, poison messages, simulated
// rejections, silence) from a seeded random source so a failing test can be
// replayed, and every platform shows what it holds.
//
// The simulators are stand-ins for outside systems: they must not depend on
// any other syncd package (signatures, check digits and encodings are
// implemented here again), so a bug in syncd cannot be mirrored by the
// simulator meant to expose it.
package sandbox
