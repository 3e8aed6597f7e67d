package api

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// TestDevicesClient: the Go client's registry methods against a node.
func TestDevicesClient(t *testing.T) {
	srv, _ := testServerWith(t, nil, Options{Tokens: testTokens})
	ctx := context.Background()
	k := pubOf(key(60))
	anon := client.New(srv.URL, client.WithRetry(client.Retry{Attempts: 1}))
	_, err := anon.AddDevice(ctx, client.NewDevice{Key: k.String()})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != client.CodeUnauthorized {
		t.Fatalf("add without a token: %v", err)
	}
	c := client.New(srv.URL, client.WithToken(opsSecret))
	d, err := c.AddDevice(ctx, client.NewDevice{Key: k.String(), Name: "meter", Tags: []string{"site:a"}})
	if err != nil || d.Key != k || d.Name != "meter" || d.State != "allowed" || d.Created.IsZero() {
		t.Fatalf("add: %+v, %v", d, err)
	}
	if _, err := c.AddDevice(ctx, client.NewDevice{Key: k.String()}); !errors.As(err, &ae) || ae.Code != client.CodeDeviceExists {
		t.Fatalf("add again: %v", err)
	}
	name := "meter 2"
	d, err = c.EditDevice(ctx, k, client.DeviceEdit{Name: &name, AddTags: []string{"audited"}, State: "revoked"})
	if err != nil || d.Name != name || d.State != "revoked" || !slices.Equal(d.Tags, []string{"audited", "site:a"}) {
		t.Fatalf("edit: %+v, %v", d, err)
	}
	if got, err := anon.GetDevice(ctx, k); err != nil || got.Name != name {
		t.Fatalf("get: %+v, %v", got, err)
	}
	for i := range 3 {
		if _, err := c.AddDevice(ctx, client.NewDevice{Key: pubOf(key(byte(61 + i))).String(), Tags: []string{"site:a"}}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []dag.PublicKey
	for after := (*dag.PublicKey)(nil); ; {
		devs, next, err := anon.Devices(ctx, "site:a", after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			keys = append(keys, d.Key)
		}
		if after = next; next == nil {
			break
		}
	}
	if len(keys) != 4 || !slices.Contains(keys, k) {
		t.Fatalf("by tag: %v", keys)
	}
	if err := c.RemoveDevice(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.GetDevice(ctx, k); !errors.As(err, &ae) || ae.Code != client.CodeNotFound {
		t.Fatalf("get after remove: %v", err)
	}
	changes, next, err := anon.DeviceChanges(ctx, 0, 2)
	if err != nil || len(changes) != 2 || changes[0].Op != "remove" || changes[0].Who != "ops" || changes[0].Key != k || next != changes[1].Seq {
		t.Fatalf("changes: %+v next %d, %v", changes, next, err)
	}
	older, next, err := anon.DeviceChanges(ctx, next, 100)
	if err != nil || len(older) != 6 || next != 0 || older[len(older)-1].Op != "add" {
		t.Fatalf("older changes: %+v next %d, %v", older, next, err)
	}
}
