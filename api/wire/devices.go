package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// The paths of the device registry (docs/API.md, "Devices").
const (
	PathDevices       = "/api/v1/devices" // GET, POST; GET, PATCH, DELETE PathDevices+"/{key}"
	PathDeviceChanges = "/api/v1/devices/changes"
)

// MaxDeviceBody bounds the body of POST and PATCH on the registry.
const MaxDeviceBody = 16 << 10

// Device is a registered device, as GET /api/v1/devices/{key} answers.
// State is "allowed" or "revoked"; Created and Updated are unix
// nanoseconds.
type Device struct {
	Key     string   `json:"key"`
	Name    string   `json:"name"`
	Tags    []string `json:"tags"`
	Owner   string   `json:"owner"`
	State   string   `json:"state"`
	Created int64    `json:"created"`
	Updated int64    `json:"updated"`
}

// DeviceList is GET /api/v1/devices: a page of devices in key order;
// NextAfter, if set, is the key to pass as ?after= for the next page.
type DeviceList struct {
	Devices   []Device `json:"devices"`
	NextAfter string   `json:"next_after,omitempty"`
}

// NewDevice is the body of POST /api/v1/devices. State defaults to
// "allowed".
type NewDevice struct {
	Key   string   `json:"key"`
	Name  string   `json:"name,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	Owner string   `json:"owner,omitempty"`
	State string   `json:"state,omitempty"`
}

// DevicePatch is the body of PATCH /api/v1/devices/{key}: the fields set
// change, the others stay. Tags replaces the tags; AddTags and RemoveTags
// then add and remove some.
type DevicePatch struct {
	Name       *string   `json:"name,omitempty"`
	Owner      *string   `json:"owner,omitempty"`
	Tags       *[]string `json:"tags,omitempty"`
	AddTags    []string  `json:"add_tags,omitempty"`
	RemoveTags []string  `json:"remove_tags,omitempty"`
	State      string    `json:"state,omitempty"`
}

// DeviceChange is one entry of the registry's change log.
type DeviceChange struct {
	Seq    uint64 `json:"seq"`
	At     int64  `json:"at"`
	Who    string `json:"who"`
	Op     string `json:"op"`
	Key    string `json:"key"`
	Detail string `json:"detail,omitempty"`
}

// DeviceChanges is GET /api/v1/devices/changes: newest first; NextBefore,
// if set, is the seq to pass as ?before= for the next page.
type DeviceChanges struct {
	Changes    []DeviceChange `json:"changes"`
	NextBefore *uint64        `json:"next_before,omitempty"`
}

// DecodeStrict decodes one JSON value from b into v, refusing unknown
// fields and anything after the value, with an error wrapping ErrField
// that says what is wrong.
func DecodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: the body: %v", ErrField, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%w: the body: more after the JSON value", ErrField)
	}
	return nil
}
