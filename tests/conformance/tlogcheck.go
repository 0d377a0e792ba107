// SPDX-License-Identifier: ISC

// tlogcheck verifies consentd's audit log with code consentd did not write:
// Go's golang.org/x/mod/sumdb/note (signed notes) and .../sumdb/tlog
// (RFC 6962 trees and proofs), as Debian packages them.
//
//	tlogcheck VKEY WITNESS_VKEY|- CHECKPOINTS_DIR ENTRIES_NDJSON PROOFS_JSON
//
// CHECKPOINTS_DIR holds signed checkpoints 000.txt, 001.txt, … oldest
// first; the last is the one the proofs are against. When WITNESS_VKEY is
// not "-", every checkpoint must carry a valid tlog-cosignature/v1 from it.
// PROOFS_JSON is {"inclusion":[<GET /v1/audit/proof>…],
// "consistency":[<GET /v1/audit/consistency>…]}. It ends with "N passed,
// N failed" and exits 1 when anything failed.
package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var passed, failed int

func check(ok bool, format string, args ...interface{}) {
	if ok {
		passed++
		return
	}
	failed++
	fmt.Printf("FAIL "+format+"\n", args...)
}

// cosigVerifier checks C2SP tlog-cosignature/v1 (key type 0x04), which
// x/mod 0.7.0 does not know: the signature is u64be(time) || Ed25519 over
// "cosignature/v1\ntime <t>\n" || checkpoint body.
type cosigVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.hash }
func (v *cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	m := fmt.Sprintf("cosignature/v1\ntime %d\n", t) + string(msg)
	return ed25519.Verify(v.key, []byte(m), sig[8:])
}

func newCosigVerifier(vkey string) (*cosigVerifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("malformed witness vkey")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 0x04 {
		return nil, errors.New("witness vkey is not a cosignature/v1 key")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	kh := binary.BigEndian.Uint32(h[:4])
	if fmt.Sprintf("%08x", kh) != parts[1] {
		return nil, errors.New("witness vkey id does not match")
	}
	return &cosigVerifier{name: parts[0], hash: kh, key: ed25519.PublicKey(raw[1:])}, nil
}

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

// parseBody reads a C2SP tlog-checkpoint body: origin, size, base64 root.
func parseBody(text string) (checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return checkpoint{}, errors.New("not a three-line checkpoint body")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return checkpoint{}, errors.New("bad size line")
	}
	h, err := tlog.ParseHash(lines[2])
	if err != nil {
		return checkpoint{}, err
	}
	return checkpoint{lines[0], n, h}, nil
}

// rootOf is the RFC 6962 root of size n; x/mod 0.7.0's TreeHash(0) returns
// zeros, not SHA-256 of nothing, so size 0 is handled here.
func rootOf(n int64, r tlog.HashReader) (tlog.Hash, error) {
	if n == 0 {
		return tlog.Hash(sha256.Sum256(nil)), nil
	}
	return tlog.TreeHash(n, r)
}

func must(err error) {
	if err != nil {
		fmt.Println("tlogcheck:", err)
		os.Exit(2)
	}
}

func hash64(s string) tlog.Hash {
	h, err := tlog.ParseHash(s)
	must(err)
	return h
}

func main() {
	if len(os.Args) != 6 {
		fmt.Println("usage: tlogcheck VKEY WITNESS_VKEY|- CHECKPOINTS_DIR ENTRIES_NDJSON PROOFS_JSON")
		os.Exit(2)
	}
	logv, err := note.NewVerifier(strings.TrimSpace(readFile(os.Args[1])))
	must(err)
	verifiers := []note.Verifier{logv}
	var wv *cosigVerifier
	if os.Args[2] != "-" {
		wv, err = newCosigVerifier(strings.TrimSpace(readFile(os.Args[2])))
		must(err)
		verifiers = append(verifiers, wv)
	}
	known := note.VerifierList(verifiers...)

	// 1. Every checkpoint is a note signed by the log key (and cosigned).
	files, err := filepath.Glob(filepath.Join(os.Args[3], "*.txt"))
	must(err)
	sort.Strings(files)
	if len(files) == 0 {
		must(errors.New("no checkpoints"))
	}
	var cps []checkpoint
	for _, f := range files {
		n, err := note.Open([]byte(readFile(f)), known)
		check(err == nil, "%s: note.Open: %v", f, err)
		if err != nil {
			continue
		}
		logSigned, cosigned := false, false
		for _, s := range n.Sigs {
			if s.Name == logv.Name() && s.Hash == logv.KeyHash() {
				logSigned = true
			}
			if wv != nil && s.Name == wv.Name() && s.Hash == wv.KeyHash() {
				cosigned = true
			}
		}
		check(logSigned, "%s: no valid signature by the log key", f)
		if wv != nil {
			check(cosigned, "%s: no valid cosignature by the witness", f)
		}
		cp, err := parseBody(n.Text)
		check(err == nil && cp.origin == logv.Name(), "%s: body: %v (origin %q)", f, err, cp.origin)
		cps = append(cps, cp)
	}
	latest := cps[len(cps)-1]

	// 2. Rebuild the tree from the entry bytes with tlog's own code.
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(stored)) {
				return nil, errors.New("hash index out of range")
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	var leaves []tlog.Hash
	sc := bufio.NewScanner(openFile(os.Args[4]))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Index    int64  `json:"index"`
			Entry    string `json:"entry"`
			LeafHash string `json:"leaf_hash"`
		}
		must(json.Unmarshal(sc.Bytes(), &e))
		data, err := base64.StdEncoding.DecodeString(e.Entry)
		must(err)
		check(e.Index == int64(len(leaves)), "entry %d out of order", e.Index)
		h := tlog.RecordHash(data)
		check(h == hash64(e.LeafHash), "entry %d: leaf hash differs from tlog.RecordHash", e.Index)
		hs, err := tlog.StoredHashes(int64(len(leaves)), data, reader)
		must(err)
		stored = append(stored, hs...)
		leaves = append(leaves, h)
	}
	must(sc.Err())
	check(int64(len(leaves)) >= latest.size, "only %d entries for a checkpoint of %d", len(leaves), latest.size)
	for _, cp := range cps {
		if cp.size > int64(len(leaves)) {
			continue
		}
		r, err := rootOf(cp.size, reader)
		check(err == nil && r == cp.root, "checkpoint %d: tlog.TreeHash differs from the signed root", cp.size)
	}

	// 3. Our inclusion and consistency proofs, checked by tlog.
	var proofs struct {
		Inclusion []struct {
			Index    int64    `json:"index"`
			Size     int64    `json:"size"`
			LeafHash string   `json:"leaf_hash"`
			Root     string   `json:"root"`
			Proof    []string `json:"proof"`
		} `json:"inclusion"`
		Consistency []struct {
			Old     int64    `json:"old"`
			New     int64    `json:"new"`
			OldRoot string   `json:"old_root"`
			NewRoot string   `json:"new_root"`
			Proof   []string `json:"proof"`
		} `json:"consistency"`
	}
	must(json.Unmarshal([]byte(readFile(os.Args[5])), &proofs))
	signedRoot := map[int64]tlog.Hash{}
	for _, cp := range cps {
		signedRoot[cp.size] = cp.root
	}
	for _, p := range proofs.Inclusion {
		root, ok := signedRoot[p.Size]
		check(ok && root == hash64(p.Root), "inclusion %d@%d: root is not a signed root", p.Index, p.Size)
		var rp tlog.RecordProof
		for _, s := range p.Proof {
			rp = append(rp, hash64(s))
		}
		leaf := hash64(p.LeafHash)
		check(p.Index < int64(len(leaves)) && leaf == leaves[p.Index], "inclusion %d: leaf hash is not the entry's", p.Index)
		err := tlog.CheckRecord(rp, p.Size, root, p.Index, leaf)
		check(err == nil, "inclusion %d@%d: tlog.CheckRecord: %v", p.Index, p.Size, err)
	}
	for _, p := range proofs.Consistency {
		oldRoot, ok1 := signedRoot[p.Old]
		newRoot, ok2 := signedRoot[p.New]
		check(ok1 && ok2 && oldRoot == hash64(p.OldRoot) && newRoot == hash64(p.NewRoot),
			"consistency %d->%d: roots are not signed roots", p.Old, p.New)
		var tp tlog.TreeProof
		for _, s := range p.Proof {
			tp = append(tp, hash64(s))
		}
		if p.Old == 0 || p.Old == p.New {
			// x/mod needs 1 <= old < new; these are trivially consistent with an empty proof.
			check(len(tp) == 0, "consistency %d->%d: proof must be empty", p.Old, p.New)
			continue
		}
		err := tlog.CheckTree(tp, p.New, newRoot, p.Old, oldRoot)
		check(err == nil, "consistency %d->%d: tlog.CheckTree: %v", p.Old, p.New, err)
	}
	fmt.Printf("tlogcheck: %d checkpoints, %d entries, %d inclusion and %d consistency proofs\n",
		len(cps), len(leaves), len(proofs.Inclusion), len(proofs.Consistency))
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	must(err)
	return string(b)
}

func openFile(p string) *os.File {
	f, err := os.Open(p)
	must(err)
	return f
}
