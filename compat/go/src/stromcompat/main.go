// stromcompat: compatibility checks of strom against Debian's sarama (1.22), a
// Go client that sends fixed, old protocol versions without asking ApiVersions
// first. Each check runs with the oldest sarama config Version its API allows,
// records every request (API key, version) its clients send, and which of them
// the broker answered with UNSUPPORTED_VERSION.
//
// Built in GOPATH mode against /usr/share/gocode (see ../../run.sh).
//
// Flags: -bootstrap HOST:PORT, -version default|0.10.2.0|..., -only a,b,c,d
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

// ---------------------------------------------------------------------------
// Request tracing: every client connection goes through a dialer that parses
// the request frames written and the response frames read.

var apiNames = map[int16]string{
	0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
	9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
	13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
	17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
	21: "DeleteRecords", 22: "InitProducerId", 32: "DescribeConfigs",
	33: "AlterConfigs", 37: "CreatePartitions", 42: "DeleteGroups",
}

func apiName(k int16) string {
	if n, ok := apiNames[k]; ok {
		return n
	}
	return "Api"
}

type apiVer struct{ key, ver int16 }

type tally struct{ sent, unsupported int }

type recorder struct {
	mu   sync.Mutex
	tags map[string]map[apiVer]*tally
}

var rec = &recorder{tags: map[string]map[apiVer]*tally{}}

func (r *recorder) note(tag string, av apiVer, unsupported bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.tags[tag]
	if m == nil {
		m = map[apiVer]*tally{}
		r.tags[tag] = m
	}
	t := m[av]
	if t == nil {
		t = &tally{}
		m[av] = t
	}
	if unsupported {
		t.unsupported++
	} else {
		t.sent++
	}
}

// summary: "Metadata(3) v0 x2, Produce(0) v0 x1 [UNSUPPORTED_VERSION x1]".
func (r *recorder) summary(tag string) (string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.tags[tag]
	keys := make([]apiVer, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].key != keys[j].key {
			return keys[i].key < keys[j].key
		}
		return keys[i].ver < keys[j].ver
	})
	var parts, unsup []string
	for _, k := range keys {
		t := m[k]
		s := fmt.Sprintf("%s(%d) v%d x%d", apiName(k.key), k.key, k.ver, t.sent)
		if t.unsupported > 0 {
			s += fmt.Sprintf(" [UNSUPPORTED_VERSION x%d]", t.unsupported)
			unsup = append(unsup, fmt.Sprintf("%s(%d) v%d", apiName(k.key), k.key, k.ver))
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "(no requests)", nil
	}
	return strings.Join(parts, ", "), unsup
}

type tracingDialer struct{ tag string }

func (d tracingDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &tracedConn{Conn: c, tag: d.tag, inflight: map[int32]apiVer{}}, nil
}

type tracedConn struct {
	net.Conn
	tag string

	mu       sync.Mutex
	inflight map[int32]apiVer // correlation id -> request

	wHdr  []byte // request header bytes gathered so far (size, key, version, correlation id)
	wSkip int    // request body bytes still to pass

	rHdr  []byte // response header: size, correlation id, and the first 2 body bytes
	rSkip int
	rSize int
}

func (c *tracedConn) Write(p []byte) (int, error) {
	q := p
	for len(q) > 0 {
		if c.wSkip > 0 {
			n := min(c.wSkip, len(q))
			c.wSkip -= n
			q = q[n:]
			continue
		}
		n := min(12-len(c.wHdr), len(q))
		c.wHdr = append(c.wHdr, q[:n]...)
		q = q[n:]
		if len(c.wHdr) == 12 {
			size := int(binary.BigEndian.Uint32(c.wHdr[0:4]))
			av := apiVer{int16(binary.BigEndian.Uint16(c.wHdr[4:6])), int16(binary.BigEndian.Uint16(c.wHdr[6:8]))}
			corr := int32(binary.BigEndian.Uint32(c.wHdr[8:12]))
			rec.note(c.tag, av, false)
			c.mu.Lock()
			c.inflight[corr] = av
			c.mu.Unlock()
			c.wSkip = size - 8
			c.wHdr = c.wHdr[:0]
		}
	}
	return c.Conn.Write(p)
}

func (c *tracedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	q := p[:n]
	for len(q) > 0 {
		if c.rSkip > 0 {
			k := min(c.rSkip, len(q))
			c.rSkip -= k
			q = q[k:]
			continue
		}
		need := 4
		if len(c.rHdr) >= 4 {
			need = min(10, 4+c.rSize)
		}
		k := min(need-len(c.rHdr), len(q))
		c.rHdr = append(c.rHdr, q[:k]...)
		q = q[k:]
		if len(c.rHdr) < 4 {
			continue
		}
		c.rSize = int(binary.BigEndian.Uint32(c.rHdr[0:4]))
		if len(c.rHdr) < min(10, 4+c.rSize) {
			continue
		}
		// A frame of exactly correlation id + int16 35 is the broker's
		// UNSUPPORTED_VERSION answer to a version it does not serve.
		if len(c.rHdr) >= 8 {
			corr := int32(binary.BigEndian.Uint32(c.rHdr[4:8]))
			c.mu.Lock()
			av, ok := c.inflight[corr]
			delete(c.inflight, corr)
			c.mu.Unlock()
			if ok && c.rSize == 6 && binary.BigEndian.Uint16(c.rHdr[8:10]) == 35 {
				rec.note(c.tag, av, true)
			}
		}
		c.rSkip = 4 + c.rSize - len(c.rHdr)
		c.rHdr = c.rHdr[:0]
	}
	return n, err
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// ---------------------------------------------------------------------------
// Configs

var (
	bootstrap []string
	runID     = fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
)

// setupVersion is used only to prepare data (topics, records) for a check, with
// versions the broker is expected to serve; its requests are reported apart.
var setupVersion = sarama.V1_0_0_0

func newConfig(v sarama.KafkaVersion, tag string) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = v
	c.ClientID = "stromcompat-go"
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 10 * time.Second
	c.Net.WriteTimeout = 5 * time.Second
	c.Net.Proxy.Enable = true
	c.Net.Proxy.Dialer = tracingDialer{tag: tag}
	c.Metadata.Retry.Max = 3
	c.Metadata.Retry.Backoff = 200 * time.Millisecond
	c.Producer.Retry.Max = 2
	c.Producer.Retry.Backoff = 200 * time.Millisecond
	c.Producer.Timeout = 5 * time.Second
	c.Admin.Timeout = 5 * time.Second
	c.Consumer.Return.Errors = true
	return c
}

func atLeast(v, floor sarama.KafkaVersion) sarama.KafkaVersion {
	if v.IsAtLeast(floor) {
		return v
	}
	return floor
}

// closeQuietly closes with a bound, so a wedged client cannot hold the run.
func closeQuietly(c interface{ Close() error }) {
	done := make(chan struct{})
	go func() { _ = c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
}

// ---------------------------------------------------------------------------
// Reading records back with the plain consumer (Fetch and ListOffsets at v).

type want struct {
	offset int64
	value  string
}

func consumeBack(cfg *sarama.Config, topic string, expect map[int32][]want, deadline time.Time) error {
	cons, err := sarama.NewConsumer(bootstrap, cfg)
	if err != nil {
		return fmt.Errorf("consumer: %v", err)
	}
	defer closeQuietly(cons)
	for p, ws := range expect {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("consume partition %d from the oldest offset: %v", p, err)
		}
		for i := 0; i < len(ws); {
			select {
			case m := <-pc.Messages():
				if m.Offset != ws[i].offset || string(m.Value) != ws[i].value {
					closeQuietly(pc)
					return fmt.Errorf("partition %d: read offset %d %q, want offset %d %q", p, m.Offset, m.Value, ws[i].offset, ws[i].value)
				}
				i++
			case e := <-pc.Errors():
				closeQuietly(pc)
				return fmt.Errorf("consume partition %d: %v", p, e.Err)
			case <-time.After(time.Until(deadline)):
				closeQuietly(pc)
				return fmt.Errorf("partition %d: read %d of %d records back before the deadline", p, i, len(ws))
			}
		}
		closeQuietly(pc)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Failures of a check: it goes on past the first where it can, so that one run
// shows every old request version the broker does not serve.

type failures []string

func (f *failures) add(format string, args ...interface{}) {
	*f = append(*f, fmt.Sprintf(format, args...))
}

func (f failures) err() error {
	if len(f) == 0 {
		return nil
	}
	return errors.New(strings.Join(f, "\n     "))
}

// sendSetup sends msgs (partitions chosen in them) with a producer of the
// setup version, filling in their offsets.
func sendSetup(msgs []*sarama.ProducerMessage, tag string) error {
	cfg := newConfig(setupVersion, tag+"/setup")
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(bootstrap, cfg)
	if err != nil {
		return err
	}
	defer closeQuietly(p)
	return p.SendMessages(msgs)
}

// seed writes the records with the setup version to partition 0 of a new
// topic, so that reading back can be checked when producing failed.
func seed(topic string, values []string, tag string) (map[int32][]want, error) {
	var msgs []*sarama.ProducerMessage
	for _, v := range values {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(v)})
	}
	if err := sendSetup(msgs, tag); err != nil {
		return nil, err
	}
	expect := map[int32][]want{}
	for _, m := range msgs {
		expect[0] = append(expect[0], want{m.Offset, string(m.Value.(sarama.StringEncoder))})
	}
	return expect, nil
}

// readBack consumes what was produced, or when producing failed, what the
// setup producer seeds into another topic.
func readBack(v sarama.KafkaVersion, tag, topic string, expect map[int32][]want, values []string, produced bool, deadline time.Time, f *failures) {
	if !produced {
		topic += "-seeded"
		var err error
		if expect, err = seed(topic, values, tag); err != nil {
			f.add("setup: seeding %s to test reading back: %v", topic, err)
			return
		}
	}
	if err := consumeBack(newConfig(v, tag), topic, expect, deadline); err != nil {
		f.add("reading back with Consumer: %v", err)
	}
}

// numbered returns prefix-0 … prefix-(n-1), the values a check produces.
func numbered(prefix string, n int) []string {
	var values []string
	for i := 0; i < n; i++ {
		values = append(values, fmt.Sprintf("%s-%d", prefix, i))
	}
	return values
}

// ---------------------------------------------------------------------------
// (a) SyncProducer

const nSync = 50

func checkSyncProducer(v sarama.KafkaVersion, tag string, deadline time.Time) error {
	var f failures
	topic := "compat-go-sync-" + runID
	values := numbered("sync", nSync)
	cfg := newConfig(v, tag)
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(bootstrap, cfg)
	if err != nil {
		return fmt.Errorf("NewSyncProducer: %v", err)
	}
	next := map[int32]int64{}
	expect := map[int32][]want{}
	produced := true
	for i, val := range values {
		part, off, err := p.SendMessage(&sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
			Value: sarama.StringEncoder(val),
		})
		if err != nil {
			f.add("SendMessage %d to new topic %s: %v", i, topic, err)
			produced = false
			break
		}
		if off != next[part] {
			f.add("SendMessage %d: partition %d offset %d, want %d (offsets of a new topic count from 0)", i, part, off, next[part])
			break
		}
		next[part]++
		expect[part] = append(expect[part], want{off, val})
	}
	closeQuietly(p)
	readBack(v, tag, topic, expect, values, produced, deadline, &f)
	return f.err()
}

// ---------------------------------------------------------------------------
// (b) AsyncProducer

const nAsync = 200

func checkAsyncProducer(v sarama.KafkaVersion, tag string, deadline time.Time) error {
	var f failures
	topic := "compat-go-async-" + runID
	values := numbered("async", nAsync)
	produced := produceAsync(v, tag, topic, values, deadline, &f)
	var byPart map[int32][]want
	if produced != nil {
		byPart = produced
	}
	readBack(v, tag, topic, byPart, values, produced != nil, deadline, &f)
	return f.err()
}

// produceAsync returns the acknowledged records by partition, or nil on failure.
func produceAsync(v sarama.KafkaVersion, tag, topic string, values []string, deadline time.Time, f *failures) map[int32][]want {
	cfg := newConfig(v, tag)
	cfg.Producer.Return.Successes = true
	cfg.Producer.Flush.Messages = 20 // several records per request
	cfg.Producer.Flush.Frequency = 20 * time.Millisecond
	p, err := sarama.NewAsyncProducer(bootstrap, cfg)
	if err != nil {
		f.add("NewAsyncProducer: %v", err)
		return nil
	}
	defer closeQuietly(p)
	go func() {
		for i, val := range values {
			p.Input() <- &sarama.ProducerMessage{
				Topic:    topic,
				Key:      sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
				Value:    sarama.StringEncoder(val),
				Metadata: i,
			}
		}
	}()
	seen := map[int]bool{}
	byPart := map[int32][]want{}
	var errs []string
	for len(seen)+len(errs) < len(values) {
		select {
		case m := <-p.Successes():
			i := m.Metadata.(int)
			if seen[i] {
				f.add("message %d acknowledged twice", i)
				return nil
			}
			seen[i] = true
			byPart[m.Partition] = append(byPart[m.Partition], want{m.Offset, values[i]})
		case e := <-p.Errors():
			errs = append(errs, e.Err.Error())
		case <-time.After(time.Until(deadline)):
			f.add("%d successes and %d errors of %d messages before the deadline", len(seen), len(errs), len(values))
			return nil
		}
	}
	if len(errs) > 0 {
		f.add("%d of %d messages failed, first: %s", len(errs), len(values), errs[0])
		return nil
	}
	for part, ws := range byPart {
		sort.Slice(ws, func(i, j int) bool { return ws[i].offset < ws[j].offset })
		for i, w := range ws {
			if w.offset != int64(i) {
				f.add("partition %d: acknowledged offsets are not 0..%d (offset %d at position %d)", part, len(ws)-1, w.offset, i)
				return nil
			}
		}
	}
	return byPart
}

// ---------------------------------------------------------------------------
// (c) consumer group of two members, commit, restart, resume

const (
	groupPartitions = 4
	nGroupFirst     = 200 // 50 a partition
	nGroupSecond    = 40  // 10 a partition
)

type got struct {
	member    int
	partition int32
	offset    int64
	value     string
}

type groupHandler struct {
	member int
	out    chan<- got
	claims chan<- string
}

func (h groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	select {
	case h.claims <- fmt.Sprintf("member %d generation %d: %v", h.member, s.GenerationID(), s.Claims()):
	default:
	}
	return nil
}
func (h groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		select {
		case h.out <- got{h.member, m.Partition, m.Offset, string(m.Value)}:
		case <-s.Context().Done():
			return nil
		}
		s.MarkMessage(m, "")
	}
	return nil
}

// runGroup runs two members until `until` says stop or the deadline passes.
// Returns what each member received, the claims seen, and errors reported.
func runGroup(v sarama.KafkaVersion, tag, group, topic string, deadline time.Time, until func(all []got) (bool, error)) ([]got, []string, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	out := make(chan got, 1024)
	claims := make(chan string, 64)
	errc := make(chan string, 64)
	var groups []sarama.ConsumerGroup
	var wg sync.WaitGroup
	for m := 1; m <= 2; m++ {
		cfg := newConfig(v, tag)
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		g, err := sarama.NewConsumerGroup(bootstrap, group, cfg)
		if err != nil {
			cancel()
			for _, g := range groups {
				closeQuietly(g)
			}
			return nil, nil, fmt.Errorf("NewConsumerGroup member %d: %v", m, err)
		}
		groups = append(groups, g)
		go func(m int) {
			for e := range g.Errors() {
				select {
				case errc <- fmt.Sprintf("member %d: %v", m, e):
				default:
				}
			}
		}(m)
		wg.Add(1)
		go func(m int) {
			defer wg.Done()
			h := groupHandler{member: m, out: out, claims: claims}
			for ctx.Err() == nil {
				if err := g.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
					select {
					case errc <- fmt.Sprintf("member %d Consume: %v", m, err):
					default:
					}
					time.Sleep(300 * time.Millisecond)
				}
			}
		}(m)
	}
	var all []got
	var claimLog, errLog []string
	var result error
loop:
	for {
		select {
		case r := <-out:
			all = append(all, r)
			done, err := until(all)
			if err != nil {
				result = err
				break loop
			}
			if done {
				break loop
			}
		case c := <-claims:
			claimLog = append(claimLog, c)
		case e := <-errc:
			errLog = append(errLog, e)
		case <-ctx.Done():
			result = fmt.Errorf("deadline passed with %d records received", len(all))
			break loop
		}
	}
	// Leave the sessions (commits marked offsets: OffsetCommit), then the group (LeaveGroup).
	cancel()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		errLog = append(errLog, "sessions did not end within 5s of cancel")
	}
	for _, g := range groups {
		closeQuietly(g)
	}
	for {
		select {
		case c := <-claims:
			claimLog = append(claimLog, c)
			continue
		case e := <-errc:
			errLog = append(errLog, e)
			continue
		default:
		}
		break
	}
	if result != nil && len(errLog) > 0 {
		result = fmt.Errorf("%v; client errors: %s", result, strings.Join(uniq(errLog), "; "))
	}
	return all, claimLog, result
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("(%d more)", len(out)-5))
	}
	return out
}

// produceSetup writes n records spread evenly over the partitions, with the
// setup version, and returns the end offset of each partition.
func produceSetup(topic string, n int, tag string) (map[int32]int64, error) {
	var msgs []*sarama.ProducerMessage
	for i := 0; i < n; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{
			Topic:     topic,
			Partition: int32(i % groupPartitions),
			Value:     sarama.StringEncoder(fmt.Sprintf("group-%d", i)),
		})
	}
	if err := sendSetup(msgs, tag); err != nil {
		return nil, err
	}
	end := map[int32]int64{}
	for _, m := range msgs {
		if m.Offset+1 > end[m.Partition] {
			end[m.Partition] = m.Offset + 1
		}
	}
	return end, nil
}

func checkConsumerGroup(v sarama.KafkaVersion, tag string, deadline time.Time) error {
	v = atLeast(v, sarama.V0_10_2_0) // NewConsumerGroup refuses anything older
	topic := "compat-go-group-" + runID
	group := "compat-go-group-" + runID

	// Setup: the topic and its first records, with versions the broker serves.
	admin, err := sarama.NewClusterAdmin(bootstrap, newConfig(setupVersion, tag+"/setup"))
	if err != nil {
		return fmt.Errorf("setup: NewClusterAdmin: %v", err)
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: groupPartitions, ReplicationFactor: 1}, false)
	closeQuietly(admin)
	if err != nil {
		return fmt.Errorf("setup: CreateTopic %s with %d partitions: %v", topic, groupPartitions, err)
	}
	end1, err := produceSetup(topic, nGroupFirst, tag)
	if err != nil {
		return fmt.Errorf("setup: produce: %v", err)
	}

	// First run: two members share the 4 partitions and read everything.
	firstDeadline := time.Now().Add(time.Until(deadline) / 2)
	seen := map[[2]int64]bool{}
	members := map[int]map[int32]bool{}
	_, claims, err := runGroup(v, tag, group, topic, firstDeadline, func(all []got) (bool, error) {
		r := all[len(all)-1]
		seen[[2]int64{int64(r.partition), r.offset}] = true
		if members[r.member] == nil {
			members[r.member] = map[int32]bool{}
		}
		members[r.member][r.partition] = true
		return len(seen) == nGroupFirst, nil
	})
	if err != nil {
		return fmt.Errorf("first run of the group: %v (claims: %s)", err, strings.Join(claims, "; "))
	}
	if len(members) != 2 {
		return fmt.Errorf("first run: only %d of 2 members received records (claims: %s)", len(members), strings.Join(claims, "; "))
	}

	// The committed offsets are the end offsets (OffsetFetch with the group's version).
	admin, err = sarama.NewClusterAdmin(bootstrap, newConfig(v, tag))
	if err != nil {
		return fmt.Errorf("NewClusterAdmin to read the committed offsets: %v", err)
	}
	parts := []int32{}
	for p := int32(0); p < groupPartitions; p++ {
		parts = append(parts, p)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	closeQuietly(admin)
	if err != nil {
		return fmt.Errorf("ListConsumerGroupOffsets: %v", err)
	}
	for _, p := range parts {
		b := resp.GetBlock(topic, p)
		if b == nil || b.Err != sarama.ErrNoError || b.Offset != end1[p] {
			got := "no block"
			if b != nil {
				got = fmt.Sprintf("offset %d, error %v", b.Offset, b.Err)
			}
			return fmt.Errorf("committed offset of partition %d: %s, want %d", p, got, end1[p])
		}
	}

	// More records, then a restarted group gets only those.
	if _, err := produceSetup(topic, nGroupSecond, tag); err != nil {
		return fmt.Errorf("setup: produce more: %v", err)
	}
	seen2 := map[[2]int64]bool{}
	_, claims2, err := runGroup(v, tag, group, topic, deadline, func(all []got) (bool, error) {
		r := all[len(all)-1]
		if r.offset < end1[r.partition] {
			return false, fmt.Errorf("restarted group re-read partition %d offset %d, below the committed offset %d", r.partition, r.offset, end1[r.partition])
		}
		seen2[[2]int64{int64(r.partition), r.offset}] = true
		return len(seen2) == nGroupSecond, nil
	})
	if err != nil {
		return fmt.Errorf("restarted group: %v (claims: %s)", err, strings.Join(claims2, "; "))
	}
	return nil
}

// ---------------------------------------------------------------------------
// (d) ClusterAdmin. Each call with the oldest Version sarama lets it send:
// CreateTopic, DescribeTopics and DeleteTopic from 0.10.1.0 (CreateTopics v0,
// DeleteTopics v0), ListTopics from 0.11.0.0 (DescribeConfigs v0). When a call
// fails, the setup admin does its work so that the next calls are still tried.

func adminVersions(v sarama.KafkaVersion) (sarama.KafkaVersion, sarama.KafkaVersion) {
	return atLeast(v, sarama.V0_10_1_0), atLeast(v, sarama.V0_11_0_0)
}

func checkAdmin(v sarama.KafkaVersion, tag string, deadline time.Time) error {
	var f failures
	vTopics, vList := adminVersions(v)
	topic := "compat-go-admin-" + runID
	admin, err := sarama.NewClusterAdmin(bootstrap, newConfig(vTopics, tag))
	if err != nil {
		return fmt.Errorf("NewClusterAdmin (Version %s): %v", vTopics, err)
	}
	defer closeQuietly(admin)
	lister, err := sarama.NewClusterAdmin(bootstrap, newConfig(vList, tag))
	if err != nil {
		return fmt.Errorf("NewClusterAdmin (Version %s): %v", vList, err)
	}
	defer closeQuietly(lister)
	var setup sarama.ClusterAdmin
	setupAdmin := func() sarama.ClusterAdmin {
		if setup == nil {
			if setup, err = sarama.NewClusterAdmin(bootstrap, newConfig(setupVersion, tag+"/setup")); err != nil {
				f.add("setup: NewClusterAdmin: %v", err)
				setup = nil
			}
		}
		return setup
	}
	defer func() {
		if setup != nil {
			closeQuietly(setup)
		}
	}()

	retention := "3600000"
	detail := &sarama.TopicDetail{
		NumPartitions:     3,
		ReplicationFactor: 1,
		ConfigEntries:     map[string]*string{"retention.ms": &retention},
	}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		f.add("CreateTopic %s (3 partitions, retention.ms=%s) with Version %s: %v", topic, retention, vTopics, err)
		if s := setupAdmin(); s == nil {
			return f.err()
		} else if err := s.CreateTopic(topic, detail, false); err != nil {
			f.add("setup: CreateTopic: %v", err)
			return f.err()
		}
	}

	if topics, err := lister.ListTopics(); err != nil {
		f.add("ListTopics with Version %s: %v", vList, err)
	} else if d, ok := topics[topic]; !ok {
		f.add("ListTopics: %s not listed", topic)
	} else if d.NumPartitions != 3 {
		f.add("ListTopics: %s has %d partitions, want 3", topic, d.NumPartitions)
	} else if r, ok := d.ConfigEntries["retention.ms"]; !ok || r == nil || *r != retention {
		var have []string
		for k, v := range d.ConfigEntries {
			if v != nil {
				have = append(have, k+"="+*v)
			}
		}
		sort.Strings(have)
		f.add("ListTopics (DescribeConfigs): retention.ms=%s not among the non-default configs of %s: %v", retention, topic, have)
	}

	if md, err := admin.DescribeTopics([]string{topic}); err != nil {
		f.add("DescribeTopics with Version %s: %v", vTopics, err)
	} else if len(md) != 1 || md[0].Name != topic || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) != 3 {
		var desc []string
		for _, t := range md {
			desc = append(desc, fmt.Sprintf("%s err=%v partitions=%d", t.Name, t.Err, len(t.Partitions)))
		}
		f.add("DescribeTopics: %v, want %s with 3 partitions and no error", desc, topic)
	}

	if err := admin.DeleteTopic(topic); err != nil {
		f.add("DeleteTopic with Version %s: %v", vTopics, err)
		if s := setupAdmin(); s != nil {
			if err := s.DeleteTopic(topic); err != nil {
				f.add("setup: DeleteTopic: %v", err)
			}
		}
		return f.err()
	}
	// Metadata v0 of a named topic may auto-create it again, so look at the
	// all-topics listing instead (Metadata v0 with no topics).
	for {
		topics, err := lister.ListTopics()
		if err != nil {
			f.add("ListTopics after DeleteTopic: %v", err)
			break
		}
		if _, ok := topics[topic]; !ok {
			break
		}
		if time.Now().After(deadline.Add(-time.Second)) {
			f.add("%s still listed after DeleteTopic", topic)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return f.err()
}

// ---------------------------------------------------------------------------

type check struct {
	id, name string
	timeout  time.Duration
	run      func(v sarama.KafkaVersion, tag string, deadline time.Time) error
	versions func(v sarama.KafkaVersion) string // the Version(s) its clients use
}

func floor(f sarama.KafkaVersion) func(sarama.KafkaVersion) string {
	return func(v sarama.KafkaVersion) string { return atLeast(v, f).String() }
}

func main() {
	bs := flag.String("bootstrap", envOr("BOOTSTRAP", "127.0.0.1:9092"), "broker address")
	ver := flag.String("version", envOr("SARAMA_VERSION", "default"), "sarama config Version (default = sarama's own default)")
	only := flag.String("only", envOr("CHECKS", "a,b,c,d"), "checks to run: a,b,c,d")
	debug := flag.Bool("debug", os.Getenv("SARAMA_DEBUG") != "", "sarama's own log to stderr")
	flag.Parse()
	bootstrap = strings.Split(*bs, ",")
	if *debug {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Ltime|log.Lmicroseconds)
	}
	v := sarama.NewConfig().Version
	if *ver != "default" {
		var err error
		if v, err = sarama.ParseKafkaVersion(*ver); err != nil {
			fmt.Fprintf(os.Stderr, "bad -version %q: %v\n", *ver, err)
			os.Exit(2)
		}
	}

	checks := []check{
		{"a", "SyncProducer: produce to a new topic, offsets, read back", 7 * time.Second, checkSyncProducer, floor(sarama.V0_8_2_0)},
		{"b", "AsyncProducer: produce, all acknowledged, read back", 7 * time.Second, checkAsyncProducer, floor(sarama.V0_8_2_0)},
		{"c", "ConsumerGroup: 2 members, 4 partitions, commit, restart resumes", 27 * time.Second, checkConsumerGroup, floor(sarama.V0_10_2_0)},
		{"d", "ClusterAdmin: CreateTopic+config, ListTopics, DescribeTopics, DeleteTopic", 7 * time.Second, checkAdmin, func(v sarama.KafkaVersion) string {
			a, b := adminVersions(v)
			return fmt.Sprintf("%s; ListTopics %s", a, b)
		}},
	}
	fmt.Printf("sarama config Version %s (requested %q), bootstrap %s\n", v, *ver, *bs)
	passed, failed := 0, 0
	for _, c := range checks {
		if !strings.Contains(","+*only+",", ","+c.id+",") {
			continue
		}
		cv := c.versions(v)
		tag := c.id
		deadline := time.Now().Add(c.timeout)
		res := make(chan error, 1)
		start := time.Now()
		go func() {
			defer func() {
				if r := recover(); r != nil {
					res <- fmt.Errorf("panic: %v", r)
				}
			}()
			res <- c.run(v, tag, deadline)
		}()
		var err error
		select {
		case err = <-res:
		case <-time.After(c.timeout + 2*time.Second):
			err = fmt.Errorf("timed out after %s", c.timeout+2*time.Second)
		}
		trace, unsup := rec.summary(tag)
		setup, _ := rec.summary(tag + "/setup")
		if err == nil {
			passed++
			fmt.Printf("ok   (%s) %s [Version %s, %.1fs]\n", c.id, c.name, cv, time.Since(start).Seconds())
		} else {
			failed++
			fmt.Printf("FAIL (%s) %s [Version %s, %.1fs]\n     %v\n", c.id, c.name, cv, time.Since(start).Seconds(), err)
			if len(unsup) > 0 {
				fmt.Printf("     the broker answered UNSUPPORTED_VERSION to: %s\n", strings.Join(unsup, ", "))
			}
		}
		fmt.Printf("     requests: %s\n", trace)
		if setup != "(no requests)" {
			fmt.Printf("     setup requests (Version %s): %s\n", setupVersion, setup)
		}
	}
	fmt.Printf("go-sarama: %d passed, %d failed\n", passed, failed)
	if failed > 0 || passed == 0 {
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
