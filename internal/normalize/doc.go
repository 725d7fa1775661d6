// Package normalize turns a source's raw payloads (record.Raw, a JSON object)
// into canonical 政务失信记录 (record.Record) or rejects (record.Reject).
//
// A Mapping, from config, says where each canonical field sits in a source's
// payload and how its values translate; New compiles it into a Normalizer.
// Normalize then, for one payload:
//
//  1. decodes it (UTF-8, or GB18030/GBK as declared by Raw.Encoding) and scans
//     the JSON object once, keeping only the values at mapped paths;
//  2. takes each canonical field from its path, through its value map, or
//     from its constant; "无", "/", "-" and the like count as absent;
//  3. cleans it (CleanText, CleanCode, NormalizeDocNo, ParseDate,
//     ParseAmount), maps code-table fields (kind, status, subject type,
//     severity) and runs the check-digit rules (ValidUSCC, ValidIDNumber);
//  4. checks required fields and the date rules, resolves the issuing
//     authority through the authorities directory (code from name or alias,
//     name from code; a source's default_authority when it names none),
//     fills defaults;
//  5. derives the severity (轻微/一般/严重) when the source gives none, from
//     severity_rules then DefaultSeverityRules; computes publicity_until
//     (公示截止期) from the decision date and the severity's period when the
//     source gives none (publicity table, DefaultPublicity); marks a
//     published record whose publicity_until is past expired; flags the
//     tiers not to publish (Result.Unpublished, by default 轻微);
//  6. derives RecordID (kind + authority code, else its directory name,
//     else its name as sent + document number) and ContentHash.
//
// A Mapping may start from a profile (ProfileCF2021, ProfileCF2016) of the
// national layouts; its own entries override the profile's.
//
// The first fault, in canonical field order, rejects the payload with a
// stable reason code (see REASONS.md). Checks that are rules (Rules) may be
// set to warn, which keeps the record and reports a Warning in the Result of
// NormalizeInto, or off. A person's ID number goes only through
// pii: the record holds its keyed hash, masked form and ciphertext, and
// reject messages show it masked.
//
// The cleaning functions are exported, pure and idempotent, for connectors and
// tests that need the same rules.
//
// This package depends on record and pii only; it does no I/O and keeps no
// state between payloads.
package normalize
