package bench

import (
	"bytes"
	_ "embed"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/weftnet/weft/rules"
)

// rulesYAML is the benchmark's rules, as a node's configuration file
// carries them.
//
//go:embed rules.yaml
var rulesYAML []byte

// RulesWebhookURL is where the webhooks of rules.yaml post.
const RulesWebhookURL = "http://127.0.0.1:9099/weft"

// Rules returns the ten rules of the benchmark of rules: those of
// bench/rules.yaml (the file for `weft node --config`), with their webhooks
// posting to webhookURL instead of RulesWebhookURL when it is not empty.
// Their conditions read the fields of Reading. Four are webhooks, three
// events and three log lines; the file's comment says how often each
// matches.
func Rules(webhookURL string) ([]rules.Rule, error) {
	var doc struct {
		Rules []rules.Rule `yaml:"rules"`
	}
	d := yaml.NewDecoder(bytes.NewReader(rulesYAML))
	d.KnownFields(true)
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("bench: rules.yaml: %w", err)
	}
	for i := range doc.Rules {
		if a := &doc.Rules[i].Action; a.Kind == rules.KindWebhook && webhookURL != "" {
			a.URL = webhookURL
		}
	}
	return doc.Rules, nil
}
