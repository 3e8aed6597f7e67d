package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
)

// The device registry (docs/API.md, "Devices"). Its changes need an
// operator's token (WithToken); a retried change whose first answer was
// lost may be answered as a second one would be (409 device_exists for an
// add, 404 not_found for a remove).

// RegisteredDevice is a device of the node's registry.
type RegisteredDevice struct {
	Key              dag.PublicKey
	Name             string
	Tags             []string
	Owner            string
	State            string // "allowed" or "revoked"
	Created, Updated time.Time
}

// NewDevice is what AddDevice registers; DeviceEdit is what EditDevice
// changes (the fields set change, the others stay).
type (
	NewDevice  = wire.NewDevice
	DeviceEdit = wire.DevicePatch
)

// DeviceChange is one entry of the registry's change log.
type DeviceChange struct {
	Seq    uint64
	At     time.Time
	Who    string
	Op     string
	Key    dag.PublicKey
	Detail string
}

// maxDeviceAnswer bounds the answer of one device: its fields' limits and
// JSON's escapes, with room to spare.
const maxDeviceAnswer = 8 << 10

func deviceOf(w wire.Device) (RegisteredDevice, error) {
	k, err := wire.ParseKey("key", w.Key)
	if err != nil {
		return RegisteredDevice{}, fmt.Errorf("%w: device: %v", ErrBadResponse, err)
	}
	if w.State != "allowed" && w.State != "revoked" {
		return RegisteredDevice{}, fmt.Errorf("%w: device %s: state %q", ErrBadResponse, k, w.State)
	}
	return RegisteredDevice{Key: k, Name: w.Name, Tags: w.Tags, Owner: w.Owner, State: w.State,
		Created: time.Unix(0, w.Created), Updated: time.Unix(0, w.Updated)}, nil
}

// Devices returns a page of the registered devices in key order: up to
// limit (1..1000; 0 for the node's default of 100) with keys above after
// (from the first if nil), only those with tag if it is not empty. next
// is the after of the next page, nil after the last.
func (c *Client) Devices(ctx context.Context, tag string, after *dag.PublicKey, limit int) (devs []RegisteredDevice, next *dag.PublicKey, err error) {
	if limit < 0 || limit > maxPageLimit {
		return nil, nil, fmt.Errorf("client: limit %d out of range 0..%d", limit, maxPageLimit)
	}
	q := url.Values{}
	if tag != "" {
		q.Set("tag", tag)
	}
	if after != nil {
		q.Set("after", after.String())
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var l wire.DeviceList
	if err := c.getJSON(ctx, wire.PathDevices, q, int64(max(limit, defaultPageLimit))*maxDeviceAnswer, &l); err != nil {
		return nil, nil, err
	}
	for _, w := range l.Devices {
		d, err := deviceOf(w)
		if err != nil {
			return nil, nil, err
		}
		devs = append(devs, d)
	}
	if l.NextAfter != "" {
		k, err := wire.ParseKey("next_after", l.NextAfter)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: devices: %v", ErrBadResponse, err)
		}
		next = &k
	}
	return devs, next, nil
}

// GetDevice returns the registered device k; an *APIError with CodeNotFound
// if there is none.
func (c *Client) GetDevice(ctx context.Context, k dag.PublicKey) (RegisteredDevice, error) {
	var w wire.Device
	if err := c.getJSON(ctx, wire.PathDevices+"/"+k.String(), nil, maxDeviceAnswer, &w); err != nil {
		return RegisteredDevice{}, err
	}
	return checkDevice(w, k)
}

// checkDevice converts w, which must be device k.
func checkDevice(w wire.Device, k dag.PublicKey) (RegisteredDevice, error) {
	d, err := deviceOf(w)
	if err == nil && d.Key != k {
		err = fmt.Errorf("%w: asked for device %s, got %s", ErrBadResponse, k, d.Key)
	}
	return d, err
}

// AddDevice registers d and returns it as the node stored it.
func (c *Client) AddDevice(ctx context.Context, d NewDevice) (RegisteredDevice, error) {
	k, err := wire.ParseKey("key", d.Key)
	if err != nil {
		return RegisteredDevice{}, fmt.Errorf("client: %w", err)
	}
	return c.sendDevice(ctx, http.MethodPost, wire.PathDevices, k, d)
}

// EditDevice changes device k as e says and returns it.
func (c *Client) EditDevice(ctx context.Context, k dag.PublicKey, e DeviceEdit) (RegisteredDevice, error) {
	return c.sendDevice(ctx, http.MethodPatch, wire.PathDevices+"/"+k.String(), k, e)
}

// RemoveDevice forgets device k.
func (c *Client) RemoveDevice(ctx context.Context, k dag.PublicKey) error {
	resp, _, err := c.do(ctx, http.MethodDelete, wire.PathDevices+"/"+k.String(), nil, "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// sendDevice sends body to path with method and reads back device k.
func (c *Client) sendDevice(ctx context.Context, method, path string, k dag.PublicKey, body any) (RegisteredDevice, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return RegisteredDevice{}, fmt.Errorf("client: %w", err)
	}
	resp, _, err := c.do(ctx, method, path, nil, "application/json", b)
	if err != nil {
		return RegisteredDevice{}, err
	}
	defer resp.Body.Close()
	var w wire.Device
	if err := decodeJSON(resp.Body, maxDeviceAnswer, path, &w); err != nil {
		return RegisteredDevice{}, err
	}
	return checkDevice(w, k)
}

// DeviceChanges returns a page of the registry's change log, newest
// first: up to limit (1..1000; 0 for the node's default of 100) changes
// numbered below before (0: from the newest). next is the before of the
// next page, 0 after the last.
func (c *Client) DeviceChanges(ctx context.Context, before uint64, limit int) (changes []DeviceChange, next uint64, err error) {
	if limit < 0 || limit > maxPageLimit {
		return nil, 0, fmt.Errorf("client: limit %d out of range 0..%d", limit, maxPageLimit)
	}
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var w wire.DeviceChanges
	if err := c.getJSON(ctx, wire.PathDeviceChanges, q, int64(max(limit, defaultPageLimit))*2048+4096, &w); err != nil {
		return nil, 0, err
	}
	for _, e := range w.Changes {
		k, err := wire.ParseKey("key", e.Key)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: changes: %v", ErrBadResponse, err)
		}
		changes = append(changes, DeviceChange{Seq: e.Seq, At: time.Unix(0, e.At), Who: e.Who, Op: e.Op, Key: k, Detail: e.Detail})
	}
	if w.NextBefore != nil {
		next = *w.NextBefore
	}
	return changes, next, nil
}
