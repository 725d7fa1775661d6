package push

import (
	"testing"

	"github.com/panjin-gov/syncd/internal/record"
	"github.com/panjin-gov/syncd/internal/store"
)

func TestDecideOp(t *testing.T) {
	scope := map[record.Kind]bool{record.DisciplinaryAction: true}
	cases := []struct {
		kind   record.Kind
		status record.Status
		held   bool
		op     store.Op
		skip   bool
	}{
		{record.DisciplinaryAction, record.Active, false, store.OpAdd, false},
		{record.DisciplinaryAction, record.Corrected, true, store.OpUpdate, false},
		{record.DisciplinaryAction, record.Revoked, true, store.OpWithdraw, false},
		{record.DisciplinaryAction, record.Repaired, true, store.OpWithdraw, false},
		{record.DisciplinaryAction, record.Expired, true, store.OpWithdraw, false},
		{record.DisciplinaryAction, record.Disputed, true, store.OpWithdraw, false},
		{record.DisciplinaryAction, record.Revoked, false, store.OpWithdraw, true}, // never held: nothing to withdraw
		{record.AdminPenalty, record.Active, false, store.OpWithdraw, true},        // out of scope
		{record.AdminPenalty, record.Active, true, store.OpWithdraw, false},        // scope narrowed after delivery
	}
	for _, c := range cases {
		r := &record.Record{Kind: c.kind, Status: c.status}
		op, skip := decideOp(r, c.held, scope, record.Status.Published)
		if op != c.op || (skip != "") != c.skip {
			t.Errorf("%s %s held=%v: got %s skip=%q, want %s skip=%v", c.kind, c.status, c.held, op, skip, c.op, c.skip)
		}
	}
}

func TestUnpublishedSeverityIsWithheld(t *testing.T) {
	r := &record.Record{Kind: record.AdminPenalty, Status: record.Active, Severity: "轻微", Unpublished: true}
	if op, skip := decideOp(r, false, nil, record.Status.Published); op != store.OpWithdraw || skip == "" {
		t.Fatalf("unpublished, never held: %s %q", op, skip)
	}
	// Reclassified as 轻微 after delivery: withdrawn.
	if op, skip := decideOp(r, true, nil, record.Status.Published); op != store.OpWithdraw || skip != "" {
		t.Fatalf("unpublished, held: %s %q", op, skip)
	}
}
