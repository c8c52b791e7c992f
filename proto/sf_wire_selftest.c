/*  =========================================================================
    sf_wire_selftest - the self test of sf_wire: round trips, crafted
    frames the scanner must refuse, and every field's bounds
    =========================================================================
*/
#include "sf_core.h"

static sf_envelope_t *
s_roundtrip (sf_envelope_t *env, sf_err_t *err)
{
    zframe_t *frame = sf_wire_encode (env, err);
    assert (frame);
    sf_envelope_t *copy = sf_wire_decode (frame, err);
    zframe_destroy (&frame);
    return copy;
}

//  Crafted frames: a growing buffer of wire-format bytes

typedef struct {
    byte *data;
    size_t size;
    size_t room;                //  Allocated, doubled as needed
} craft_t;

static void
s_craft_bytes (craft_t *craft, const void *data, size_t size)
{
    if (craft->size + size + 1 > craft->room) {
        craft->room = (craft->size + size + 1) * 2;
        craft->data = (byte *) realloc (craft->data, craft->room);
    }
    assert (craft->data);
    if (size)
        memcpy (craft->data + craft->size, data, size);
    craft->size += size;
}

static void
s_craft_varint (craft_t *craft, uint64_t value)
{
    byte buffer [10];
    size_t size = 0;
    do {
        buffer [size++] = (byte) ((value & 0x7f) | (value > 0x7f? 0x80: 0));
        value >>= 7;
    } while (value);
    s_craft_bytes (craft, buffer, size);
}

//  Field number with wire type 2 holding inner (consumed)

static void
s_craft_nest (craft_t *craft, uint32_t number, craft_t *inner)
{
    s_craft_varint (craft, (uint64_t) number << 3 | 2);
    s_craft_varint (craft, inner->size);
    s_craft_bytes (craft, inner->data, inner->size);
    free (inner->data);
    *inner = (craft_t) { NULL, 0, 0 };
}

//  count empty entries of field number (wire type 2)

static craft_t
s_craft_repeat (uint32_t number, size_t count)
{
    craft_t craft = { NULL, 0, 0 };
    for (size_t i = 0; i < count; i++) {
        s_craft_varint (&craft, (uint64_t) number << 3 | 2);
        s_craft_varint (&craft, 0);
    }
    return craft;
}

//  Envelope { version 1, inventory { instance { disks: count empty } } }

static craft_t
s_craft_disks (size_t count)
{
    craft_t instance = s_craft_repeat (4, count);
    craft_t inventory = { NULL, 0, 0 }, envelope = { NULL, 0, 0 };
    s_craft_nest (&inventory, 1, &instance);
    s_craft_varint (&envelope, 1 << 3 | 0);
    s_craft_varint (&envelope, SF_WIRE_VERSION);
    s_craft_nest (&envelope, 13, &inventory);
    return envelope;
}

//  A protobuf-c allocator that counts, to show what unpacking would cost

static size_t s_allocations;

static void *
s_counting_alloc (void *data, size_t size)
{
    (void) data;
    s_allocations++;
    return malloc (size);
}

static void
s_counting_free (void *data, void *pointer)
{
    (void) data;
    free (pointer);
}

//  Decode a crafted frame: NULL expected, with error text starting expect

static void
s_test_refused (craft_t *craft, const char *expect)
{
    sf_err_t err = SF_ERR_INIT;
    zframe_t *frame = zframe_new (craft->data, craft->size);
    int64_t start = zclock_mono ();
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    int64_t took = zclock_mono () - start;
    if (env || strncmp (err.text, expect, strlen (expect)))
        fprintf (stderr, "\nexpected '%s', got '%s'\n", expect, env? "a message": err.text);
    assert (!env && err.code == SF_EPROTO);
    assert (strncmp (err.text, expect, strlen (expect)) == 0);
    //  A walk over at most 4 MiB, no unpacking: well under a second even
    //  on a loaded machine under ASan
    assert (took < 1000);
    zframe_destroy (&frame);
    free (craft->data);
    *craft = (craft_t) { NULL, 0, 0 };
}

//  Repeated counts and the wire format are checked before unpacking

static void
s_test_scan (void)
{
    //  What protobuf-c alone would do with 20,000 empty disks: as many
    //  allocations (the reason for the walk)
    craft_t craft = s_craft_disks (20000);
    ProtobufCAllocator counting = { s_counting_alloc, s_counting_free, NULL };
    s_allocations = 0;
    sf_envelope_t *raw = sf__v1__envelope__unpack (&counting, craft.size, craft.data);
    assert (raw && raw->inventory->instances [0]->n_disks == 20000);
    assert (s_allocations > 20000);
    sf__v1__envelope__free_unpacked (raw, &counting);
    free (craft.data);

    //  A million empty disks in 2 MB: refused by the walk, before unpack
    //  (whose own check says "instance has more than"), and fast
    craft = s_craft_disks (1000000);
    assert (craft.size < SF_WIRE_MAX_BYTES);
    s_test_refused (&craft, "field 'instance.disks' has more than 64 entries");
    //  At the cap the walk passes (and the frame then fails on its content)
    craft = s_craft_disks (SF_WIRE_MAX_DISKS);
    sf_err_t err = SF_ERR_INIT;
    assert (sf_wire_scan (craft.data, craft.size, &err) == 0);
    s_test_refused (&craft, "required field 'instance.uuid' is empty");
    craft = s_craft_disks (SF_WIRE_MAX_DISKS + 1);
    s_test_refused (&craft, "field 'instance.disks' has more than 64 entries");

    //  Every other capped repeated field, one past its cap
    const struct {
        uint32_t path [4];      //  Field numbers from the envelope in, 0-ended
        size_t count;
        const char *expect;
    } cases [] = {
        { { 13, 0 }, 1000000, "field 'inventory.instances' has more than 4096 entries" },
        { { 13, 1, 0 }, SF_WIRE_MAX_TAGS + 1, "field 'instance.tags' has more than 64" },
        { { 13, 1, 4, 0 }, SF_WIRE_MAX_CHAIN + 1, "field 'disk.backing_chain' has more than 32" },
        { { 10, 0 }, SF_WIRE_MAX_STRATEGIES + 1, "field 'hello.strategies' has more than 32" },
        { { 10, 0 }, SF_WIRE_MAX_RUNNING + 1, "field 'hello.running_jobs' has more than 1024" },
        { { 17, 0 }, SF_WIRE_MAX_IMAGES + 1, "field 'job_result.images' has more than 64" },
        { { 27, 0 }, SF_WIRE_MAX_HOLDINGS + 1,
          "field 'gc_holdings.holdings' has more than 4096" },
        { { 28, 0 }, SF_WIRE_MAX_HOLDINGS + 1,
          "field 'gc_remove.holdings' has more than 4096" },
        { { 29, 0 }, SF_WIRE_MAX_HOLDINGS + 1,
          "field 'gc_removed.failed' has more than 4096" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        //  The repeated field's number: instances 1, tags 6, chain 7,
        //  strategies 4, running_jobs 5, images 10, holdings 2 and 3, failed 3
        const uint32_t numbers [] = { 1, 6, 7, 4, 5, 10, 2, 3, 3 };
        craft_t inner = s_craft_repeat (numbers [i], cases [i].count);
        int depth = 0;
        while (cases [i].path [depth])
            depth++;
        while (depth-- > 0) {
            craft_t outer = { NULL, 0, 0 };
            if (depth == 0) {
                s_craft_varint (&outer, 1 << 3 | 0);
                s_craft_varint (&outer, SF_WIRE_VERSION);
            }
            s_craft_nest (&outer, cases [i].path [depth], &inner);
            inner = outer;
        }
        s_test_refused (&inner, cases [i].expect);
    }

    //  Malformed wire format: truncated length, a group, a tag of field 0,
    //  a message field sent as a varint, too many other fields
    craft = (craft_t) { NULL, 0, 0 };
    s_craft_varint (&craft, 13 << 3 | 2);
    s_craft_varint (&craft, 1000);
    s_test_refused (&craft, "truncated field in envelope");
    s_craft_varint (&craft, 99 << 3 | 3);
    s_test_refused (&craft, "wire type 3 in envelope");
    s_craft_bytes (&craft, "\x00\x01", 2);
    s_test_refused (&craft, "malformed field tag in envelope");
    s_craft_varint (&craft, 13 << 3 | 0);
    s_craft_varint (&craft, 5);
    s_test_refused (&craft, "field 'inventory' has wire type 0, not 2");
    for (int i = 0; i < 65; i++) {
        s_craft_varint (&craft, 99 << 3 | 0);
        s_craft_varint (&craft, 1);
    }
    s_test_refused (&craft, "envelope has more than 64 fields besides");
    //  An unknown field (a newer peer's) is skipped, not entered
    craft_t unknown = s_craft_repeat (4, 100);
    s_craft_nest (&craft, 99, &unknown);
    s_craft_varint (&craft, 1 << 3 | 0);
    s_craft_varint (&craft, SF_WIRE_VERSION);
    assert (sf_wire_scan (craft.data, craft.size, &err) == 0);
    s_test_refused (&craft, "message has no body");
}

//  Every message a range test can fill, one of each

typedef struct {
    sf_envelope_t env;
    sf_hello_t hello;
    sf_welcome_t welcome;
    sf_heartbeat_t beat;
    sf_job_event_t event;
    sf_job_result_t result;
    sf_image_t image, *images [1];
    sf_inventory_t inventory;
    sf_instance_t instance, *instances [1];
    sf_disk_t disk, *disks [1];
    sf_job_assign_t assign;
    sf_job_grant_t grant;
    sf_rate_applied_t applied;
    sf_job_status_t status;
} range_msgs_t;

//  Build a valid envelope whose number field is value; returns the value
//  as the field holds it (a uint32_t field keeps the low 32 bits)

static uint64_t
s_range_build (range_msgs_t *m, const char *field, uint64_t value)
{
    *m = (range_msgs_t) {
        .hello = SF_HELLO_INIT, .welcome = SF_WELCOME_INIT, .beat = SF_HEARTBEAT_INIT,
        .event = SF_JOB_EVENT_INIT, .result = SF_JOB_RESULT_INIT, .image = SF_IMAGE_INIT,
        .inventory = SF_INVENTORY_INIT, .instance = SF_INSTANCE_INIT, .disk = SF_DISK_INIT,
        .assign = SF_JOB_ASSIGN_INIT, .grant = SF_JOB_GRANT_INIT,
        .applied = SF_RATE_APPLIED_INIT, .status = SF_JOB_STATUS_INIT
    };
    m->status.job_id = "J1", m->status.state = SF_JOB_STATE_RUNNING;
    m->hello.node = "n1";
    m->event.job_id = m->result.job_id = m->grant.job_id = m->applied.job_id = "J1";
    m->assign.job_id = "J1", m->assign.instance_uuid = "u1", m->assign.strategy = "offline";
    m->assign.catalog_id = "0123456789abcdef";
    m->event.phase = SF_PHASE_DONE;
    m->images [0] = &m->image;
    m->result.images = m->images;
    m->result.n_images = 1;
    m->instance.uuid = "u1", m->instance.name = "vm1";
    m->disks [0] = &m->disk;
    m->instance.disks = m->disks, m->instance.n_disks = 1;
    m->instances [0] = &m->instance;
    m->inventory.instances = m->instances, m->inventory.n_instances = 1;
    struct { const char *field; int body; void *msg; void *number; bool narrow; } map [] = {
        { "hello.max_jobs", SF_BODY_HELLO, &m->hello, &m->hello.max_jobs, true },
        { "hello.scratch_free", SF_BODY_HELLO, &m->hello, &m->hello.scratch_free, false },
        { "hello.max_pause_ms", SF_BODY_HELLO, &m->hello, &m->hello.max_pause_ms, false },
        { "job_status.progress", SF_BODY_JOB_STATUS, &m->status, &m->status.progress, false },
        { "welcome.heartbeat_ms", SF_BODY_WELCOME, &m->welcome, &m->welcome.heartbeat_ms, true },
        { "heartbeat.running_jobs", SF_BODY_HEARTBEAT, &m->beat, &m->beat.running_jobs, true },
        { "heartbeat.scratch_free", SF_BODY_HEARTBEAT, &m->beat, &m->beat.scratch_free, false },
        { "heartbeat.rbd_snap_ms", SF_BODY_HEARTBEAT, &m->beat, &m->beat.rbd_snap_ms, false },
        { "job_event.ms", SF_BODY_JOB_EVENT, &m->event, &m->event.ms, false },
        { "job_event.bytes", SF_BODY_JOB_EVENT, &m->event, &m->event.bytes, false },
        { "job_event.at_ms", SF_BODY_JOB_EVENT, &m->event, &m->event.at_ms, false },
        { "job_result.pause_ms", SF_BODY_JOB_RESULT, &m->result, &m->result.pause_ms, false },
        { "job_result.convert_ms", SF_BODY_JOB_RESULT, &m->result, &m->result.convert_ms, false },
        { "job_result.upload_ms", SF_BODY_JOB_RESULT, &m->result, &m->result.upload_ms, false },
        { "job_result.bytes", SF_BODY_JOB_RESULT, &m->result, &m->result.bytes, false },
        { "image.size", SF_BODY_JOB_RESULT, &m->result, &m->image.size, false },
        { "image.own_bytes", SF_BODY_JOB_RESULT, &m->result, &m->image.own_bytes, false },
        { "disk.virtual_size", SF_BODY_INVENTORY, &m->inventory, &m->disk.virtual_size, false },
        { "disk.allocated_size", SF_BODY_INVENTORY, &m->inventory, &m->disk.allocated_size,
          false },
        { "job_assign.scratch_bytes", SF_BODY_JOB_ASSIGN, &m->assign, &m->assign.scratch_bytes,
          false },
        { "job_grant.rate_bps", SF_BODY_JOB_GRANT, &m->grant, &m->grant.rate_bps, false },
        { "rate_applied.rate_bps", SF_BODY_RATE_APPLIED, &m->applied, &m->applied.rate_bps,
          false },
    };
    for (size_t i = 0; i < sizeof (map) / sizeof (map [0]); i++)
        if (streq (map [i].field, field)) {
            m->env = sf_wire_envelope (map [i].body, map [i].msg);
            if (map [i].narrow)
                return *(uint32_t *) map [i].number = (uint32_t) value;
            return *(uint64_t *) map [i].number = value;
        }
    assert (!"s_range_build: unknown field");
    return 0;
}

//  Each number field at its boundaries: 0 and max pass, max + 1,
//  INT64_MAX and UINT64_MAX are SF_EPROTO naming the field

static void
s_test_ranges (void)
{
    const struct { const char *field; uint64_t max; } fields [] = {
        { "hello.max_jobs", SF_WIRE_MAX_JOBS },
        { "hello.scratch_free", SF_WIRE_MAX_SIZE },
        { "hello.max_pause_ms", SF_WIRE_MAX_MS },
        { "job_status.progress", SF_WIRE_MAX_TOTAL },
        { "welcome.heartbeat_ms", SF_WIRE_MAX_HEARTBEAT_MS },
        { "heartbeat.running_jobs", SF_WIRE_MAX_JOBS },
        { "heartbeat.scratch_free", SF_WIRE_MAX_SIZE },
        { "heartbeat.rbd_snap_ms", SF_WIRE_MAX_MS },
        { "job_event.ms", SF_WIRE_MAX_MS },
        { "job_event.bytes", SF_WIRE_MAX_TOTAL },
        { "job_event.at_ms", SF_WIRE_MAX_TIME_MS },
        { "job_result.pause_ms", SF_WIRE_MAX_MS },
        { "job_result.convert_ms", SF_WIRE_MAX_MS },
        { "job_result.upload_ms", SF_WIRE_MAX_MS },
        { "job_result.bytes", SF_WIRE_MAX_TOTAL },
        { "image.own_bytes", SF_WIRE_MAX_SIZE },
        { "image.size", SF_WIRE_MAX_SIZE },
        { "disk.virtual_size", SF_WIRE_MAX_SIZE },
        { "disk.allocated_size", SF_WIRE_MAX_SIZE },
        { "job_assign.scratch_bytes", SF_WIRE_MAX_TOTAL },
        { "job_grant.rate_bps", SF_WIRE_MAX_SIZE },
        { "rate_applied.rate_bps", SF_WIRE_MAX_SIZE },
    };
    for (size_t i = 0; i < sizeof (fields) / sizeof (fields [0]); i++) {
        const uint64_t max = fields [i].max;
        const uint64_t values [] = { 0, 1, max - 1, max, max + 1, INT64_MAX,
                                     (uint64_t) INT64_MAX + 1, UINT64_MAX };
        for (size_t v = 0; v < sizeof (values) / sizeof (values [0]); v++) {
            range_msgs_t msgs;
            uint64_t held = s_range_build (&msgs, fields [i].field, values [v]);
            sf_err_t err = SF_ERR_INIT;
            zframe_t *frame = sf_wire_encode (&msgs.env, &err);
            assert (frame);
            sf_envelope_t *copy = sf_wire_decode (frame, &err);
            zframe_destroy (&frame);
            if (held <= max)
                assert (copy);
            else {
                assert (!copy && err.code == SF_EPROTO);
                char expect [128];
                snprintf (expect, sizeof (expect), "field '%s' is %" PRIu64 ", outside 0..%"
                          PRIu64, fields [i].field, held, max);
                assert (streq (err.text, expect));
            }
            sf_wire_free (&copy);
        }
    }
}

void
sf_wire_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_wire: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;

    //  A job result with one image survives the round trip
    sf_image_t image = SF_IMAGE_INIT;
    image.id = "img1";
    image.size = 1ull << 33;
    sf_image_t *images [] = { &image };
    sf_job_result_t result = SF_JOB_RESULT_INIT;
    result.job_id = "J1";
    result.attempt = 2;
    result.ok = 1;
    result.pause_ms = 1234;
    result.n_images = 1;
    result.images = images;
    sf_envelope_t env = SF_ENVELOPE_INIT;
    env.body_case = SF_BODY_JOB_RESULT;
    env.job_result = &result;
    sf_envelope_t *copy = s_roundtrip (&env, &err);
    assert (copy);
    assert (copy->body_case == SF_BODY_JOB_RESULT);
    assert (streq (copy->job_result->job_id, "J1"));
    assert (copy->job_result->attempt == 2);
    assert (copy->job_result->images [0]->size == 1ull << 33);
    assert (streq (copy->job_result->method, ""));
    sf_wire_free (&copy);
    assert (copy == NULL);
    //  The method: a short lowercase name, or none
    result.method = "rbd-snapshot";
    copy = s_roundtrip (&env, &err);
    assert (copy && streq (copy->job_result->method, "rbd-snapshot"));
    sf_wire_free (&copy);
    const char *bad_methods [] = { "RBD", "rbd snapshot", "a\nb",
                                   "abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijkl" };
    for (size_t i = 0; i < sizeof (bad_methods) / sizeof (bad_methods [0]); i++) {
        result.method = (char *) bad_methods [i];
        assert (s_roundtrip (&env, &err) == NULL && err.code == SF_EPROTO);
        assert (strstr (err.text, "job_result.method"));
    }
    result.method = "";

    //  The constructors: an event and a rate answer survive the round trip
    int64_t before = sf_time_now_ms ();
    sf_job_event_t event = sf_wire_job_event ("J2", 3, SF_PHASE_UPLOADED, 250, 4096);
    sf_envelope_t made = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->body_case == SF_BODY_JOB_EVENT);
    assert (streq (copy->job_event->job_id, "J2") && copy->job_event->attempt == 3);
    assert (copy->job_event->phase == SF_PHASE_UPLOADED);
    assert (copy->job_event->ms == 250 && copy->job_event->bytes == 4096);
    assert ((int64_t) copy->job_event->at_ms >= before);
    sf_wire_free (&copy);
    sf_job_grant_t grant = SF_JOB_GRANT_INIT;
    grant.job_id = "J3", grant.attempt = 1, grant.rate_bps = 8 << 20;
    sf_rate_applied_t applied = sf_wire_rate_applied (&grant);
    made = sf_wire_envelope (SF_BODY_RATE_APPLIED, &applied);
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->body_case == SF_BODY_RATE_APPLIED);
    assert (streq (copy->rate_applied->job_id, "J3"));
    assert (copy->rate_applied->attempt == 1 && copy->rate_applied->rate_bps == 8 << 20);
    sf_wire_free (&copy);

    //  Acks: each acknowledges exactly the message it was made from
    sf_envelope_t event_env = sf_wire_envelope (SF_BODY_JOB_EVENT, &event);
    sf_envelope_t result_env = sf_wire_envelope (SF_BODY_JOB_RESULT, &result);
    sf_image_deleted_t deleted = SF_IMAGE_DELETED_INIT;
    deleted.request_id = "R7";
    sf_envelope_t deleted_env = sf_wire_envelope (SF_BODY_IMAGE_DELETED, &deleted);
    sf_ack_t acks [3];
    assert (sf_wire_ack_of (&event_env, &acks [0]));
    assert (sf_wire_ack_of (&result_env, &acks [1]));
    assert (sf_wire_ack_of (&deleted_env, &acks [2]));
    sf_ack_t none;
    assert (!sf_wire_ack_of (&made, &none));    //  a RateApplied needs none
    sf_ack_t *ack_ptrs [] = { &acks [0], &acks [1], &acks [2] };
    sf_acks_t ack_list = SF_ACKS_INIT;
    ack_list.acks = ack_ptrs, ack_list.n_acks = 3;
    sf_envelope_t acks_env = sf_wire_envelope (SF_BODY_ACKS, &ack_list);
    copy = s_roundtrip (&acks_env, &err);
    assert (copy && copy->body_case == SF_BODY_ACKS && copy->acks->n_acks == 3);
    assert (sf_wire_ack_matches (copy->acks->acks [0], &event_env));
    assert (!sf_wire_ack_matches (copy->acks->acks [0], &result_env));
    assert (sf_wire_ack_matches (copy->acks->acks [1], &result_env));
    assert (!sf_wire_ack_matches (copy->acks->acks [1], &event_env));
    assert (sf_wire_ack_matches (copy->acks->acks [2], &deleted_env));
    assert (!sf_wire_ack_matches (copy->acks->acks [2], &event_env));
    sf_wire_free (&copy);
    sf_ack_t both = sf_wire_ack ("J1", 1, SF_PHASE_DONE, 0, NULL);
    both.request_id = "R1";         //  names a job and a request: refused
    ack_ptrs [0] = &both;
    ack_list.n_acks = 1;
    assert (s_roundtrip (&acks_env, &err) == NULL && err.code == SF_EPROTO);
    sf_ack_t neither = SF_ACK_INIT;
    ack_ptrs [0] = &neither;
    assert (s_roundtrip (&acks_env, &err) == NULL && err.code == SF_EPROTO);

    //  A job status: the state must be one of the four
    sf_job_status_t status = SF_JOB_STATUS_INIT;
    status.job_id = "J4", status.attempt = 1, status.state = SF_JOB_STATE_RUNNING;
    status.phase = SF_PHASE_CONVERTED, status.progress = 1 << 20;
    made = sf_wire_envelope (SF_BODY_JOB_STATUS, &status);
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->job_status->state == SF_JOB_STATE_RUNNING);
    assert (copy->job_status->progress == 1 << 20);
    sf_wire_free (&copy);
    status.state = (Sf__V1__JobState) 9;
    assert (s_roundtrip (&made, &err) == NULL && err.code == SF_EPROTO);
    sf_job_query_t query = SF_JOB_QUERY_INIT;
    made = sf_wire_envelope (SF_BODY_JOB_QUERY, &query);
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "job_query.job_id"));

    //  The reconciler's messages: ids, kinds, names and counts checked
    sf_gc_list_t gc_list = SF_GC_LIST_INIT;
    gc_list.request_id = "G1";
    made = sf_wire_envelope (SF_BODY_GC_LIST, &gc_list);
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "gc_list.catalog_id"));
    gc_list.catalog_id = "0123456789abcdef";
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->body_case == SF_BODY_GC_LIST);
    sf_wire_free (&copy);
    sf_holding_t held = SF_HOLDING_INIT;
    held.kind = SF_HOLDING_SNAP, held.name = "rbd/vm1@snapfleet-0123456789abcdef-J4";
    held.job_id = "J4", held.bytes = 1 << 20, held.age_ms = 60000;
    sf_holding_t *held_ptrs [] = { &held };
    sf_gc_holdings_t gc_holdings = SF_GC_HOLDINGS_INIT;
    gc_holdings.request_id = "G1", gc_holdings.holdings = held_ptrs;
    gc_holdings.n_holdings = 1, gc_holdings.store_complete = 1;
    made = sf_wire_envelope (SF_BODY_GC_HOLDINGS, &gc_holdings);
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->gc_holdings->n_holdings == 1 && copy->gc_holdings->store_complete);
    assert (copy->gc_holdings->holdings [0]->kind == SF_HOLDING_SNAP);
    assert (streq (copy->gc_holdings->holdings [0]->job_id, "J4"));
    sf_wire_free (&copy);
    held.kind = (Sf__V1__HoldingKind) 9;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "kind 9 out of range"));
    held.kind = SF_HOLDING_TEMP;    //  a store entry's name is a safe id, no path
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "not a safe identifier"));
    held.name = "0b6e";
    held.job_id = "../J4";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "holding.job_id"));
    held.job_id = "";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "holding.job_id"));
    held.job_id = "J4";
    sf_gc_remove_t gc_remove = SF_GC_REMOVE_INIT;
    gc_remove.request_id = "G1", gc_remove.holdings = held_ptrs, gc_remove.n_holdings = 1;
    made = sf_wire_envelope (SF_BODY_GC_REMOVE, &gc_remove);
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "gc_remove.catalog_id"));
    gc_remove.catalog_id = "0123456789abcdef";
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->gc_remove->n_holdings == 1);
    sf_wire_free (&copy);
    held.error = "cannot remove";
    sf_gc_removed_t gc_removed = SF_GC_REMOVED_INIT;
    gc_removed.request_id = "G1", gc_removed.failed = held_ptrs, gc_removed.n_failed = 1;
    made = sf_wire_envelope (SF_BODY_GC_REMOVED, &gc_removed);
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->gc_removed->n_failed == 1 && copy->gc_removed->n_removed == 0);
    assert (streq (copy->gc_removed->failed [0]->error, "cannot remove"));
    sf_wire_free (&copy);
    gc_removed.request_id = "";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "gc_removed.request_id"));
    assert (streq (sf_wire_holding_kind_name (SF_HOLDING_CLONE), "clone"));

    //  Missing job id is rejected
    result.job_id = "";
    assert (s_roundtrip (&env, &err) == NULL);
    assert (err.code == SF_EPROTO);
    assert (strstr (err.text, "job_result.job_id"));

    //  Invalid UTF-8 is rejected; valid multibyte text passes
    assert (sf_utf8_valid ("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    assert (!sf_utf8_valid ("\xc0\xaf"));          //  overlong '/'
    assert (!sf_utf8_valid ("\xed\xa0\x80"));      //  surrogate
    assert (!sf_utf8_valid ("\xff"));
    assert (!sf_utf8_valid ("\xe2\x82"));          //  truncated
    result.job_id = "J\xff";
    assert (s_roundtrip (&env, &err) == NULL);
    assert (strstr (err.text, "not valid UTF-8"));

    //  Unsafe node name in hello is rejected
    sf_hello_t hello = SF_HELLO_INIT;
    hello.node = "../../etc";
    env.body_case = SF_BODY_HELLO;
    env.hello = &hello;
    assert (s_roundtrip (&env, &err) == NULL);
    hello.node = "hv01";
    copy = s_roundtrip (&env, &err);
    assert (copy && streq (copy->hello->node, "hv01"));
    sf_wire_free (&copy);

    //  A JobAssign needs a catalogue id; an ImageDelete one and the job id
    sf_job_assign_t assign = SF_JOB_ASSIGN_INIT;
    assign.job_id = "J4", assign.instance_uuid = "u1", assign.strategy = "rbd";
    made = sf_wire_envelope (SF_BODY_JOB_ASSIGN, &assign);
    assert (s_roundtrip (&made, &err) == NULL && err.code == SF_EPROTO);
    assert (strstr (err.text, "job_assign.catalog_id is not a catalogue id"));
    assign.catalog_id = "0123456789ABCDEF";
    assert (s_roundtrip (&made, &err) == NULL && err.code == SF_EPROTO);
    assign.catalog_id = "0123456789abcdef";
    copy = s_roundtrip (&made, &err);
    assert (copy && streq (copy->job_assign->catalog_id, "0123456789abcdef"));
    sf_wire_free (&copy);
    //  A restore: only with strategy "restore", an image with its hash and
    //  format, exactly one target, an absolute path without '..', a format
    assign.strategy = SF_WIRE_RESTORE;
    assert (s_roundtrip (&made, &err) == NULL && err.code == SF_EPROTO);
    assert (strstr (err.text, "has no restore"));
    sf_image_t source = SF_IMAGE_INIT;
    source.store = "dir", source.id = "0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e";
    source.path = "/var/lib/snapfleet/images/0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e.qcow2";
    source.format = "qcow2", source.size = 1024;
    source.sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    sf_restore_t restore = SF_RESTORE_INIT;
    restore.image = &source, restore.to_file = "/srv/vm1.qcow2", restore.format = "qcow2";
    assign.restore = &restore;
    copy = s_roundtrip (&made, &err);
    assert (copy && streq (copy->job_assign->restore->to_file, "/srv/vm1.qcow2"));
    assert (streq (copy->job_assign->restore->image->sha256, source.sha256));
    sf_wire_free (&copy);
    struct { const char *to_file, *to_rbd, *format, *sha, *image_format, *expect; } refused [] = {
        { "srv/vm1.qcow2", "", "qcow2", NULL, NULL, "not an absolute path" },
        { "/srv/../etc/passwd", "", "qcow2", NULL, NULL, "'..' component" },
        { "/srv/./vm1", "", "qcow2", NULL, NULL, "'.' or '..'" },
        { "/srv//vm1", "", "qcow2", NULL, NULL, "empty" },
        { "/srv/vm1/", "", "qcow2", NULL, NULL, "empty" },
        { "/srv/vm\n1", "", "qcow2", NULL, NULL, "control character" },
        { "/srv/vm1", "rbd/vm1", "qcow2", NULL, NULL, "exactly one" },
        { "", "", "qcow2", NULL, NULL, "exactly one" },
        { "/srv/vm1", "", "vmdk", NULL, NULL, "restore.format" },
        { "/srv/vm1", "", "", NULL, NULL, "restore.format" },
        { "/srv/vm1", "", "raw", "0123", NULL, "64 lowercase hex" },
        { "/srv/vm1", "", "raw", NULL, "vmdk", "restore.image.format" },
    };
    for (size_t i = 0; i < sizeof (refused) / sizeof (refused [0]); i++) {
        restore.to_file = (char *) refused [i].to_file, restore.to_rbd = (char *) refused [i].to_rbd;
        restore.format = (char *) refused [i].format;
        source.sha256 = refused [i].sha? (char *) refused [i].sha
                      : "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        source.format = refused [i].image_format? (char *) refused [i].image_format: "qcow2";
        assert (s_roundtrip (&made, &err) == NULL && err.code == SF_EPROTO);
        assert (!refused [i].expect || strstr (err.text, refused [i].expect));
    }
    restore.to_file = "", restore.to_rbd = "rbd/vm1", restore.format = "raw";
    source.format = "qcow2";
    copy = s_roundtrip (&made, &err);       //  a dir image to RBD
    assert (copy && streq (copy->job_assign->restore->to_rbd, "rbd/vm1"));
    sf_wire_free (&copy);
    restore.format = "qcow2";               //  RBD images are raw
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "RBD images are raw"));
    restore.format = "raw";
    restore.flatten = true;                 //  only for an RBD source
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "restore.flatten"));
    //  An RBD clone: no hash, its path is rbd:ID, raw
    source.store = "rbd", source.id = "rbd/vm1-snapfleet-0123456789abcdef-J4";
    source.path = "rbd:rbd/vm1-snapfleet-0123456789abcdef-J4", source.format = "raw";
    source.sha256 = "";
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->job_assign->restore->flatten);
    sf_wire_free (&copy);
    restore.flatten = false, restore.to_rbd = "", restore.to_file = "/srv/vm1.raw";
    copy = s_roundtrip (&made, &err);
    assert (copy && streq (copy->job_assign->restore->image->sha256, ""));
    sf_wire_free (&copy);
    struct { const char *to_rbd, *path, *sha, *expect; } rbd_refused [] = {
        { "", "rbd:rbd/other", "", "path is rbd:ID" },
        { "", "/x.qcow2", "", "path is rbd:ID" },
        { "", NULL, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
          "sha256 is set for an RBD image" },
        { "rbd", NULL, "", "not POOL/NAME" },
        { "rbd/", NULL, "", "empty component" },
        { "/vm1", NULL, "", "empty component" },
        { "rbd//vm1", NULL, "", "empty component" },
        { "a/b/c/d", NULL, "", "not POOL/NAME" },
        { "rbd/vm1@s", NULL, "", "'@'" },
        { "rbd/vm:1", NULL, "", "':'" },
        { "rbd/vm 1", NULL, "", "a space" },
    };
    for (size_t i = 0; i < sizeof (rbd_refused) / sizeof (rbd_refused [0]); i++) {
        restore.to_rbd = (char *) rbd_refused [i].to_rbd;
        restore.to_file = *restore.to_rbd? "": "/srv/vm1.raw";
        source.path = rbd_refused [i].path? (char *) rbd_refused [i].path
                    : "rbd:rbd/vm1-snapfleet-0123456789abcdef-J4";
        source.sha256 = (char *) rbd_refused [i].sha;
        assert (s_roundtrip (&made, &err) == NULL && err.code == SF_EPROTO);
        assert (strstr (err.text, rbd_refused [i].expect));
    }
    source.path = "rbd:rbd/vm1-snapfleet-0123456789abcdef-J4";
    restore.to_rbd = "rbd/ns/vm1", restore.to_file = "";
    copy = s_roundtrip (&made, &err);
    assert (copy);
    sf_wire_free (&copy);
    source.store = "dir", source.id = "0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e";
    source.path = "/var/lib/snapfleet/images/0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e.qcow2";
    source.format = "qcow2";
    source.sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    //  restore --as-domain: a name snapfleet may define, with the XML
    restore.to_file = "/srv/vm1.qcow2", restore.to_rbd = "", restore.format = "qcow2";
    restore.as_domain = "vm1-copy", restore.domain_xml = "<domain/>";
    copy = s_roundtrip (&made, &err);
    assert (copy && streq (copy->job_assign->restore->as_domain, "vm1-copy"));
    sf_wire_free (&copy);
    restore.as_domain = "snapfleet-verify-J4";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "restore.as_domain"));
    restore.as_domain = "vm 1";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "restore.as_domain"));
    restore.to_file = "", restore.as_domain = "vm1-copy";   //  alone: beside the original's disk
    copy = s_roundtrip (&made, &err);
    assert (copy && streq (copy->job_assign->restore->to_file, ""));
    sf_wire_free (&copy);
    restore.to_rbd = "rbd/vm1";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "needs to_file"));
    restore.to_file = "/srv/vm1.qcow2", restore.to_rbd = "";
    restore.as_domain = "vm1-copy", restore.domain_xml = "";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "go together"));
    char *big_xml = (char *) malloc (SF_WIRE_MAX_XML + 2);
    memset (big_xml, 'x', SF_WIRE_MAX_XML + 1);
    big_xml [SF_WIRE_MAX_XML + 1] = 0;
    restore.domain_xml = big_xml;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text,
            "'restore.domain_xml' longer than 65536"));
    big_xml [SF_WIRE_MAX_XML] = 0;      //  64 KiB exactly: taken
    copy = s_roundtrip (&made, &err);
    assert (copy && strlen (copy->job_assign->restore->domain_xml) == SF_WIRE_MAX_XML);
    sf_wire_free (&copy);
    restore.as_domain = "", restore.domain_xml = "";
    assign.strategy = "rbd";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "not 'restore'"));
    assign.restore = NULL;
    //  An incremental run: file-live only, a qcow2 base per disk once, a
    //  snapfleet checkpoint name
    sf_image_t base = SF_IMAGE_INIT;
    base.store = "dir", base.id = "0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e";
    base.disk_target = "vda", base.format = "qcow2", base.size = 1024;
    sf_incremental_disk_t incr_disk = SF_INCREMENTAL_DISK_INIT;
    incr_disk.image = &base, incr_disk.checkpoint = "snapfleet-J3";
    sf_incremental_disk_t *incr_disks [2] = { &incr_disk, &incr_disk };
    sf_incremental_t incr = SF_INCREMENTAL_INIT;
    incr.disks = incr_disks, incr.n_disks = 1;
    assign.incremental = &incr, assign.strategy = "file-live";
    copy = s_roundtrip (&made, &err);
    assert (copy && streq (copy->job_assign->incremental->disks [0]->checkpoint,
                           "snapfleet-J3"));
    sf_wire_free (&copy);
    assign.strategy = "file-cold";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "not file-live"));
    assign.strategy = "file-live";
    incr.n_disks = 2;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "names disk 'vda' twice"));
    incr.n_disks = 1;
    struct { const char *checkpoint, *id, *format, *expect; } incr_refused [] = {
        { "c1", NULL, NULL, "not a snapfleet checkpoint" },
        { "snapfleet-", NULL, NULL, "not a snapfleet checkpoint" },
        { "snapfleet-J/1", NULL, NULL, "not a snapfleet checkpoint" },
        { NULL, "../etc/x", NULL, "not a safe name" },
        { NULL, "", NULL, "incremental.base.id" },
        { NULL, NULL, "raw", "not qcow2" },
    };
    for (size_t i = 0; i < sizeof (incr_refused) / sizeof (incr_refused [0]); i++) {
        incr_disk.checkpoint = incr_refused [i].checkpoint? (char *) incr_refused [i].checkpoint
                                                          : "snapfleet-J3";
        base.id = incr_refused [i].id? (char *) incr_refused [i].id
                                     : "0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e";
        base.format = incr_refused [i].format? (char *) incr_refused [i].format: "qcow2";
        assert (s_roundtrip (&made, &err) == NULL && err.code == SF_EPROTO);
        assert (strstr (err.text, incr_refused [i].expect));
    }
    incr_disk.image = NULL;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "incremental.disks.image"));
    assign.incremental = NULL;
    assert (sf_wire_checkpoint_valid ("snapfleet-J1") && !sf_wire_checkpoint_valid ("J1"));
    assign.strategy = "rbd";
    //  A verify: only with strategy "verify", an image as a restore's; boot
    //  needs the XML and a timeout
    sf_verify_t verify = SF_VERIFY_INIT;
    verify.image = &source;
    assign.verify = &verify;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "not 'verify'"));
    assign.strategy = SF_WIRE_VERIFY;
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->job_assign->verify && !copy->job_assign->verify->boot);
    sf_wire_free (&copy);
    verify.boot = true;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "needs verify.domain_xml"));
    verify.domain_xml = "<domain/>";
    copy = s_roundtrip (&made, &err);       //  the worker's pattern and timeout
    assert (copy && copy->job_assign->verify->boot_timeout_ms == 0);
    sf_wire_free (&copy);
    verify.boot_timeout_ms = 60000, verify.life_pattern = "login:";
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->job_assign->verify->boot_timeout_ms == 60000);
    sf_wire_free (&copy);
    char long_pattern [SF_WIRE_MAX_PATTERN + 2];
    memset (long_pattern, 'a', sizeof (long_pattern) - 1);
    long_pattern [sizeof (long_pattern) - 1] = 0;
    verify.life_pattern = long_pattern;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "verify.life_pattern"));
    verify.life_pattern = "login:";
    verify.boot_timeout_ms = SF_WIRE_MAX_MS + 1;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "verify.boot_timeout_ms"));
    verify.boot_timeout_ms = 60000, source.sha256 = "00";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "verify.image.sha256"));
    source.sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assign.verify = NULL;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "has no verify"));
    assign.strategy = "rbd";
    //  A result's domain XML: up to 64 KiB, and a verify's findings
    sf_job_result_t xml_result = SF_JOB_RESULT_INIT;
    xml_result.job_id = "J4", xml_result.domain_xml = big_xml;
    made = sf_wire_envelope (SF_BODY_JOB_RESULT, &xml_result);
    copy = s_roundtrip (&made, &err);
    assert (copy && strlen (copy->job_result->domain_xml) == SF_WIRE_MAX_XML);
    sf_wire_free (&copy);
    big_xml [SF_WIRE_MAX_XML] = 'x';
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "job_result.domain_xml"));
    free (big_xml);
    xml_result.domain_xml = "<domain>\xff</domain>";
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "not valid UTF-8"));
    xml_result.domain_xml = "";
    sf_verify_result_t found = SF_VERIFY_RESULT_INIT;
    found.hash_ok = true, found.time_to_life_ms = SF_WIRE_MAX_MS + 1, found.text = "";
    xml_result.verify = &found;
    assert (s_roundtrip (&made, &err) == NULL && strstr (err.text, "time_to_life_ms"));
    found.time_to_life_ms = 4100;
    copy = s_roundtrip (&made, &err);
    assert (copy && copy->job_result->verify->time_to_life_ms == 4100);
    sf_wire_free (&copy);
    //  A NUL inside the XML (protobuf-c would cut the string there)
    craft_t xml = { NULL, 0, 0 }, result_craft = { NULL, 0, 0 }, env_craft = { NULL, 0, 0 };
    s_craft_varint (&result_craft, 1 << 3 | 2);
    s_craft_varint (&result_craft, 2);
    s_craft_bytes (&result_craft, "J4", 2);
    s_craft_bytes (&xml, "<a>\0</a>", 8);
    s_craft_nest (&result_craft, 16, &xml);
    s_craft_varint (&env_craft, 1 << 3 | 0);
    s_craft_varint (&env_craft, SF_WIRE_VERSION);
    s_craft_nest (&env_craft, 17, &result_craft);
    s_test_refused (&env_craft, "field 'job_result.domain_xml' holds a NUL byte");
    assert (sf_wire_path_check ("/a/b.img", "target", &err) == 0);
    assert (sf_wire_path_check ("/", "target", &err) == -1 && err.code == SF_EINVAL);
    assert (sf_wire_restore_format_valid ("raw") && !sf_wire_restore_format_valid ("RAW"));
    sf_image_t doomed = SF_IMAGE_INIT;
    doomed.store = "rbd", doomed.id = "rbd/vm1-snapfleet-0123456789abcdef-J4";
    sf_image_delete_t delete_msg = SF_IMAGE_DELETE_INIT;
    delete_msg.request_id = "R1", delete_msg.image = &doomed, delete_msg.job_id = "J4";
    made = sf_wire_envelope (SF_BODY_IMAGE_DELETE, &delete_msg);
    assert (s_roundtrip (&made, &err) == NULL && err.code == SF_EPROTO);
    assert (strstr (err.text, "image_delete.catalog_id is not a catalogue id"));
    delete_msg.catalog_id = "0123456789abcdef", delete_msg.job_id = "";
    assert (s_roundtrip (&made, &err) == NULL && err.code == SF_EPROTO);
    assert (strstr (err.text, "image_delete.job_id"));
    delete_msg.job_id = "J4";
    copy = s_roundtrip (&made, &err);
    assert (copy && streq (copy->image_delete->job_id, "J4"));
    sf_wire_free (&copy);

    //  No body
    env.body_case = SF_BODY_NONE;
    assert (s_roundtrip (&env, &err) == NULL);
    assert (strstr (err.text, "no body"));

    //  Garbage bytes are rejected, never crash
    for (int seed = 0; seed < 2000; seed++) {
        byte junk [64];
        unsigned state = (unsigned) seed * 2654435761u;
        size_t size = 1 + seed % sizeof (junk);
        for (size_t i = 0; i < size; i++) {
            state = state * 1103515245u + 12345u;
            junk [i] = (byte) (state >> 16);
        }
        zframe_t *frame = zframe_new (junk, size);
        sf_envelope_t *bad = sf_wire_decode (frame, &err);
        if (bad)
            sf_wire_free (&bad);    //  valid by chance: fine, it was validated
        zframe_destroy (&frame);
    }

    //  Wrong version
    sf_heartbeat_t beat = SF_HEARTBEAT_INIT;
    env.body_case = SF_BODY_HEARTBEAT;
    env.heartbeat = &beat;
    zframe_t *frame = sf_wire_encode (&env, &err);
    sf_envelope_t *patched = sf__v1__envelope__unpack (NULL, zframe_size (frame),
                                                       zframe_data (frame));
    patched->version = 99;
    zframe_t *frame2 = zframe_new (NULL, sf__v1__envelope__get_packed_size (patched));
    sf__v1__envelope__pack (patched, zframe_data (frame2));
    assert (sf_wire_decode (frame2, &err) == NULL);
    assert (strstr (err.text, "protocol version 99"));
    sf_wire_free (&patched);
    zframe_destroy (&frame);
    zframe_destroy (&frame2);

    //  Over the real sockets: DEALER -> ROUTER with routing id
    zsock_t *router = zsock_new_router ("inproc://sf_wire_test");
    zsock_t *dealer = zsock_new_dealer (">inproc://sf_wire_test");
    assert (router && dealer);
    assert (sf_wire_send (dealer, NULL, &env, &err) == 0);
    zframe_t *routing_id = NULL;
    sf_envelope_t *got = sf_wire_recv (router, &routing_id, &err);
    assert (got && got->body_case == SF_BODY_HEARTBEAT);
    assert (routing_id);
    sf_wire_free (&got);
    sf_welcome_t welcome = SF_WELCOME_INIT;
    welcome.heartbeat_ms = 500;
    env.body_case = SF_BODY_WELCOME;
    env.welcome = &welcome;
    assert (sf_wire_send (router, routing_id, &env, &err) == 0);
    got = sf_wire_recv (dealer, NULL, &err);
    assert (got && got->welcome->heartbeat_ms == 500);
    sf_wire_free (&got);
    //  Two frames where one is expected
    zstr_sendm (dealer, "x");
    zstr_send (dealer, "y");
    zframe_t *rid2 = NULL;
    assert (sf_wire_recv (router, &rid2, &err) == NULL);
    assert (strstr (err.text, "expected 1 body frame"));
    zframe_destroy (&rid2);
    zframe_destroy (&routing_id);
    zsock_destroy (&dealer);
    zsock_destroy (&router);

    assert (streq (sf_wire_body_name (SF_BODY_JOB_EVENT), "job_event"));
    assert (streq (sf_wire_phase_name (SF_PHASE_RESUMED), "resumed"));

    s_test_ranges ();
    s_test_scan ();
    //  @end
    printf ("OK\n");
}
