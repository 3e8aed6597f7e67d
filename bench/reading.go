package bench

import (
	"strconv"
)

// MinJSONPayload is the smallest payload that holds a JSON reading of any
// index (Config.JSONPayload).
const MinJSONPayload = 64

// Reading returns the JSON reading of index i, padded with spaces to size
// bytes (JSON allows trailing whitespace; a reading is at most 51 bytes,
// and a size below that leaves it unpadded):
//
//	{"i":41,"temp_c":17.3,"rh":62.9}
//
// The temperature and humidity are drawn from i by a hash, so they are the
// same for every run: temp_c mostly between 2.0 and 30.0, above 45 for
// 0.05% of indexes and below -30 for another 0.05%; rh mostly between
// 30.0 and 90.0, above 95 for 0.2%. The conditions of Rules read these
// fields.
func Reading(i uint64, size int) []byte {
	return appendReading(make([]byte, 0, max(size, MinJSONPayload)), i, size)
}

// appendReading appends Reading(i, size) to dst.
func appendReading(dst []byte, i uint64, size int) []byte {
	temp, rh := reading(i)
	start := len(dst)
	dst = append(dst, `{"i":`...)
	dst = strconv.AppendUint(dst, i, 10)
	dst = append(dst, `,"temp_c":`...)
	dst = strconv.AppendFloat(dst, temp, 'f', 1, 64)
	dst = append(dst, `,"rh":`...)
	dst = strconv.AppendFloat(dst, rh, 'f', 1, 64)
	dst = append(dst, '}')
	for len(dst)-start < size {
		dst = append(dst, ' ')
	}
	return dst
}

// reading returns the temperature and relative humidity of reading i.
func reading(i uint64) (temp, rh float64) {
	h := mix64(i)
	temp = 2 + float64(h%2800)/100
	switch r := (h >> 32) % 10000; {
	case r < 5:
		temp = 45.5 + float64(r)
	case r < 10:
		temp = -30.5 - float64(r-5)
	}
	h2 := mix64(h)
	rh = 30 + float64(h2%6000)/100
	if (h2>>40)%1000 < 2 {
		rh = 96 + float64((h2>>50)%4)
	}
	return temp, rh
}

// mix64 is splitmix64's finalizer: a bijection of uint64 whose output bits
// each depend on every input bit.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
