package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/rules"
)

// The rules under /api/v1/rules (docs/API.md, "Rules"): every endpoint
// needs a token, since a webhook's URL can be a credential and dead
// letters carry telemetry.

// routeRules adds the rules' endpoints to the mux.
func (s *Server) routeRules() {
	s.mux.HandleFunc("GET "+wire.PathRules, s.operator(s.listRules))
	s.mux.HandleFunc("POST "+wire.PathRules, s.operator(s.addRule))
	s.mux.HandleFunc("POST "+wire.PathRuleTest, s.operator(s.testRule))
	s.mux.HandleFunc("GET "+wire.PathRules+"/{name}", s.operator(s.getRule))
	s.mux.HandleFunc("PUT "+wire.PathRules+"/{name}", s.operator(s.putRule))
	s.mux.HandleFunc("DELETE "+wire.PathRules+"/{name}", s.operator(s.removeRule))
	s.mux.HandleFunc("GET "+wire.PathRules+"/{name}/dead-letters", s.operator(s.deadLetters))
}

// ruleJSON is ri as the API shows it: without the webhook's secret.
func ruleJSON(ri node.RuleInfo) wire.Rule {
	r, st := ri.Rule, ri.Stats
	out := wire.Rule{Name: r.Name, Condition: r.Condition, Source: ri.Source, UpdatedBy: ri.Who,
		Action: wire.RuleAction{Kind: r.Action.Kind, URL: r.Action.URL, SecretSet: r.Action.Secret != "", Topic: r.Action.Topic},
		Stats: &wire.RuleStats{Cursor: st.Cursor, Matches: st.Matches, EvalErrors: st.EvalErrors, LastEvalError: st.LastEvalError,
			Pending: st.Pending, PendingBytes: st.PendingBytes, Delivered: st.Delivered, FailedAttempts: st.FailedAttempts,
			LastDeliveryError: st.LastDeliveryError, DeadLetters: st.DeadLetters, DeadLettersDropped: st.DeadLettersDropped}}
	if !ri.Updated.IsZero() {
		out.Updated = ri.Updated.UnixNano()
	}
	return out
}

// ruleOf is the definition of a rule of the API.
func ruleOf(in *wire.Rule) rules.Rule {
	return rules.Rule{Name: in.Name, Condition: in.Condition,
		Action: rules.Action{Kind: in.Action.Kind, URL: in.Action.URL, Secret: in.Action.Secret, Topic: in.Action.Topic}}
}

// readRule decodes a rule of the body, which holds a definition only.
func readRule(w http.ResponseWriter, r *http.Request) (rules.Rule, bool) {
	var in wire.Rule
	if !readJSONBody(w, r, wire.MaxRuleBody, &in) {
		return rules.Rule{}, false
	}
	if !definitionOnly(w, &in) {
		return rules.Rule{}, false
	}
	return ruleOf(&in), true
}

// definitionOnly answers 400 unless in holds a definition only: the
// fields the node sets are its own.
func definitionOnly(w http.ResponseWriter, in *wire.Rule) bool {
	if in.Source != "" || in.UpdatedBy != "" || in.Updated != 0 || in.Stats != nil || in.Action.SecretSet {
		writeError(w, wire.CodeBadRequest, "a rule's body is its name, condition and action: source, updated_by, updated, stats and secret_set are the node's")
		return false
	}
	return true
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request, _ string) {
	out := wire.RuleList{Rules: []wire.Rule{}}
	for _, ri := range s.node.Rules() {
		out.Rules = append(out.Rules, ruleJSON(ri))
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) getRule(w http.ResponseWriter, r *http.Request, _ string) {
	ri, err := s.node.Rule(r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, ruleJSON(ri))
}

func (s *Server) addRule(w http.ResponseWriter, r *http.Request, who string) {
	rule, ok := readRule(w, r)
	if ok {
		s.setRule(w, rule, who, false)
	}
}

func (s *Server) putRule(w http.ResponseWriter, r *http.Request, who string) {
	rule, ok := readRule(w, r)
	if !ok {
		return
	}
	if name := r.PathValue("name"); rule.Name == "" {
		rule.Name = name
	} else if rule.Name != name {
		writeError(w, wire.CodeBadRequest, "the body names rule "+rule.Name+", the path "+name)
		return
	}
	s.setRule(w, rule, who, true)
}

// setRule adds or replaces a rule, answering 201 with its Location when it
// is new, 200 when it replaced one.
func (s *Server) setRule(w http.ResponseWriter, rule rules.Rule, who string, replace bool) {
	created, err := s.node.PutRule(rule, who, replace)
	if err != nil {
		fail(w, err)
		return
	}
	ri, err := s.node.Rule(rule.Name)
	if err != nil {
		fail(w, err)
		return
	}
	status := http.StatusOK
	if created {
		w.Header().Set("Location", wire.PathRules+"/"+rule.Name)
		status = http.StatusCreated
	}
	s.log.Info().Str("rule", rule.Name).Str("who", who).Bool("created", created).Msg("api: rule set")
	wire.WriteJSON(w, status, ruleJSON(ri))
}

func (s *Server) removeRule(w http.ResponseWriter, r *http.Request, who string) {
	name := r.PathValue("name")
	if err := s.node.RemoveRule(name); err != nil {
		fail(w, err)
		return
	}
	s.log.Info().Str("rule", name).Str("who", who).Msg("api: rule removed")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request, _ string) {
	name := r.PathValue("name")
	dls, err := s.node.RuleDeadLetters(name)
	if err != nil {
		fail(w, err)
		return
	}
	out := wire.DeadLetters{Rule: name, DeadLetters: []wire.DeadLetter{}}
	for _, d := range dls {
		m, _ := json.Marshal(d.Match)
		out.DeadLetters = append(out.DeadLetters, wire.DeadLetter{Match: m, Attempts: d.Attempts, LastError: d.LastError,
			FailedAt: d.FailedAt.UnixNano()})
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) testRule(w http.ResponseWriter, r *http.Request, _ string) {
	var in wire.RuleTest
	if !readJSONBody(w, r, wire.MaxRuleBody, &in) {
		return
	}
	var rule rules.Rule
	switch {
	case (in.Name == "") == (in.Rule == nil):
		writeError(w, wire.CodeBadRequest, "a test names one of the node's rules (name) or gives one (rule), not both")
		return
	case in.Rule != nil:
		if !definitionOnly(w, in.Rule) {
			return
		}
		rule = ruleOf(in.Rule)
	default:
		ri, err := s.node.Rule(in.Name)
		if err != nil {
			fail(w, err)
			return
		}
		rule = ri.Rule
	}
	// The test acts on nothing: its action is checked, never taken.
	if rule.Action.Kind == "" {
		rule.Action = rules.Action{Kind: rules.KindLog}
	}
	tr, err := testRange(&in)
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	limit := in.Limit
	if limit < 0 || limit > node.MaxRuleTest {
		writeError(w, wire.CodeBadRequest, "limit is 1 to 100000")
		return
	}
	if limit == 0 {
		limit = node.MaxRuleTest
	}
	res, more, err := s.node.TestRule(r.Context(), rule, tr, limit)
	if err != nil {
		fail(w, err)
		return
	}
	out := wire.RuleTestResult{Rule: rule.Name, Evaluated: res.Evaluated, More: more,
		Matches: []json.RawMessage{}, Errors: []wire.RuleEvalError{}}
	for i := range res.Matches {
		m, _ := json.Marshal(&res.Matches[i])
		out.Matches = append(out.Matches, m)
	}
	for _, e := range res.Errors {
		out.Errors = append(out.Errors, wire.RuleEvalError{ID: e.ID, Error: e.Err})
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

// testRange is the selection of a test.
func testRange(in *wire.RuleTest) (node.TimeRange, error) {
	tr := node.TimeRange{From: math.MinInt64, To: math.MaxInt64}
	var err error
	if in.From != "" {
		if tr.From, err = wire.ParseTime(in.From); err != nil {
			return tr, err
		}
	}
	if in.To != "" {
		if tr.To, err = wire.ParseTime(in.To); err != nil {
			return tr, err
		}
	}
	if tr.To <= tr.From {
		return tr, errors.New("to must be after from")
	}
	if in.Issuer != "" {
		k, err := wire.ParseKey("issuer", in.Issuer)
		if err != nil {
			return tr, err
		}
		tr.Issuer = &k
	}
	return tr, nil
}

// readJSONBody decodes the JSON body of r, at most limit bytes, into v,
// answering what is wrong with it.
func readJSONBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	b, err := readBody(r, limit)
	if err != nil {
		fail(w, err)
		return false
	}
	if err := wire.DecodeStrict(b, v); err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return false
	}
	return true
}
