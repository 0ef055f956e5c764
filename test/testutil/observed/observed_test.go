package observed

import "testing"

func TestEveryRequestHasAnOutcome(t *testing.T) {
	reqs := Requests()
	if len(reqs) == 0 {
		t.Fatal("no requests")
	}
	for _, r := range reqs {
		if _, ok := Outcomes()[r.Case]; !ok {
			t.Errorf("case %q has no outcome", r.Case)
		}
	}
}

func TestEveryJFRRequestHasAnOutcome(t *testing.T) {
	reqs := JFRRequests()
	if len(reqs) != 4 {
		t.Fatalf("%d JFR requests, want 4", len(reqs))
	}
	for _, r := range reqs {
		if _, ok := JFROutcomes()[r.Case]; !ok {
			t.Errorf("case %q has no outcome", r.Case)
		}
	}
}

func TestEveryOTLPRequestHasAnOutcome(t *testing.T) {
	reqs := OTLPRequests()
	if len(reqs) != 4 {
		t.Fatalf("%d OTLP requests, want 4", len(reqs))
	}
	for _, r := range reqs {
		if _, ok := OTLPOutcomes()[r.Case]; !ok {
			t.Errorf("case %q has no outcome", r.Case)
		}
	}
}
