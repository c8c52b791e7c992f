/*  =========================================================================
    sf_scan - the inventory scanner actor and the Inventory encoding

    The Inventory message borrows every string from the domain list: it is
    built, packed and freed in one go (sf_scan_encode), so no protobuf
    structure outlives the list it points into.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <unistd.h>

SF_LOG_MODULE ("worker.scan");

//  --------------------------------------------------------------------------
//  Encoding

static sf_disk_t *
s_disk_new (const sf_hv_disk_t *src)
{
    sf_disk_t *disk = (sf_disk_t *) zmalloc (sizeof (sf_disk_t));
    *disk = (sf_disk_t) SF_DISK_INIT;
    disk->target = src->target;
    disk->type = src->type;
    disk->source = src->source;
    disk->format = src->format;
    disk->device = src->device;
    disk->virtual_size = src->virtual_size;
    disk->allocated_size = src->allocated_size;
    size_t chain = zlistx_size (src->backing_chain);
    if (chain > SF_WIRE_MAX_CHAIN)
        chain = SF_WIRE_MAX_CHAIN;
    disk->backing_chain = (char **) zmalloc ((chain + 1) * sizeof (char *));
    char *layer = (char *) zlistx_first (src->backing_chain);
    for (; layer && disk->n_backing_chain < chain;
         layer = (char *) zlistx_next (src->backing_chain))
        disk->backing_chain [disk->n_backing_chain++] = layer;
    return disk;
}

static sf_instance_t *
s_instance_new (const sf_hv_domain_t *domain)
{
    sf_instance_t *inst = (sf_instance_t *) zmalloc (sizeof (sf_instance_t));
    *inst = (sf_instance_t) SF_INSTANCE_INIT;
    inst->uuid = (char *) domain->uuid;
    inst->name = domain->name;
    inst->state = domain->state;
    inst->storage_class = (char *) sf_hv_domain_storage_class (domain);
    size_t count = zlistx_size (domain->disks);
    if (count > SF_WIRE_MAX_DISKS)
        count = SF_WIRE_MAX_DISKS;
    inst->disks = (sf_disk_t **) zmalloc ((count + 1) * sizeof (sf_disk_t *));
    sf_hv_disk_t *disk = (sf_hv_disk_t *) zlistx_first (domain->disks);
    for (; disk && inst->n_disks < count; disk = (sf_hv_disk_t *) zlistx_next (domain->disks))
        inst->disks [inst->n_disks++] = s_disk_new (disk);
    count = zlistx_size (domain->tags);
    if (count > SF_WIRE_MAX_TAGS)
        count = SF_WIRE_MAX_TAGS;
    inst->tags = (sf_tag_t **) zmalloc ((count + 1) * sizeof (sf_tag_t *));
    sf_hv_tag_t *tag = (sf_hv_tag_t *) zlistx_first (domain->tags);
    for (; tag && inst->n_tags < count; tag = (sf_hv_tag_t *) zlistx_next (domain->tags)) {
        sf_tag_t *entry = (sf_tag_t *) zmalloc (sizeof (sf_tag_t));
        *entry = (sf_tag_t) SF_TAG_INIT;
        entry->key = tag->key;
        entry->value = tag->value;
        inst->tags [inst->n_tags++] = entry;
    }
    return inst;
}

static void
s_inventory_free (sf_inventory_t *inv)
{
    for (size_t i = 0; i < inv->n_instances; i++) {
        sf_instance_t *inst = inv->instances [i];
        for (size_t d = 0; d < inst->n_disks; d++) {
            free (inst->disks [d]->backing_chain);
            free (inst->disks [d]);
        }
        free (inst->disks);
        for (size_t t = 0; t < inst->n_tags; t++)
            free (inst->tags [t]);
        free (inst->tags);
        free (inst);
    }
    free (inv->instances);
}

zframe_t *
sf_scan_encode (zlistx_t *domains, sf_err_t *err)
{
    assert (domains);
    sf_inventory_t inv = SF_INVENTORY_INIT;
    size_t count = zlistx_size (domains);
    if (count > SF_WIRE_MAX_INSTANCES)
        count = SF_WIRE_MAX_INSTANCES;
    inv.instances = (sf_instance_t **) zmalloc ((count + 1) * sizeof (sf_instance_t *));
    sf_hv_domain_t *domain = (sf_hv_domain_t *) zlistx_first (domains);
    for (; domain && inv.n_instances < count; domain = (sf_hv_domain_t *) zlistx_next (domains))
        //  A verification's transient copy of a guest is not an instance
        if (!sf_naming_is_verify_domain (domain->name))
            inv.instances [inv.n_instances++] = s_instance_new (domain);
    sf_envelope_t env = sf_wire_envelope (SF_BODY_INVENTORY, &inv);
    zframe_t *frame = sf_wire_encode (&env, err);
    s_inventory_free (&inv);
    return frame;
}

const sf_instance_t *
sf_scan_find (const sf_envelope_t *inventory, const char *uuid)
{
    if (!inventory || inventory->body_case != SF_BODY_INVENTORY || !uuid)
        return NULL;
    for (size_t i = 0; i < inventory->inventory->n_instances; i++)
        if (strcasecmp (inventory->inventory->instances [i]->uuid, uuid) == 0)
            return inventory->inventory->instances [i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  The actor

typedef struct {
    zsock_t *pipe;              //  Borrowed, the actor pipe
    char *uri;                  //  Owned
    char *workdir;              //  Owned
    char *run_id;               //  Owned
    sf_hv_t *hv;                //  Owned, NULL while disconnected
} scan_t;

static void
s_scan_once (scan_t *self)
{
    sf_err_t err = SF_ERR_INIT;
    if (!self->hv)
        self->hv = sf_hv_new (self->uri, &err);
    zlistx_t *domains = NULL;
    zframe_t *frame = NULL;
    if (self->hv) {
        sf_guard_recover (self->hv, self->workdir, self->run_id);
        domains = sf_hv_list (self->hv, SF_HV_SIZES, &err);
        if (!domains)           //  reconnect next time
            sf_hv_destroy (&self->hv);
    }
    if (domains)
        frame = sf_scan_encode (domains, &err);
    if (frame)
        zsock_send (self->pipe, "sf", "INVENTORY", frame);
    else
        zsock_send (self->pipe, "ss", "FAILED", err.text);
    zframe_destroy (&frame);
    zlistx_destroy (&domains);
}

void
sf_scan_actor (zsock_t *pipe, void *args)
{
    const sf_scan_args_t *scan_args = (const sf_scan_args_t *) args;
    scan_t self = { pipe, strdup (scan_args->uri), strdup (scan_args->workdir),
                    strdup (scan_args->run_id), NULL };
    zsock_signal (pipe, 0);
    while (true) {
        char *command = zstr_recv (pipe);
        if (!command)
            break;              //  interrupted
        bool stop = streq (command, "$TERM");
        if (streq (command, "SCAN"))
            s_scan_once (&self);
        zstr_free (&command);
        if (stop)
            break;
    }
    sf_hv_destroy (&self.hv);
    free (self.uri);
    free (self.workdir);
    free (self.run_id);
}

//  --------------------------------------------------------------------------
//  Self test

static sf_envelope_t *
s_test_scan (zactor_t *scanner)
{
    zstr_send (scanner, "SCAN");
    char *command = NULL;
    zframe_t *frame = NULL;
    assert (zsock_recv (scanner, "sf", &command, &frame) == 0);
    assert (streq (command, "INVENTORY"));
    sf_err_t err = SF_ERR_INIT;
    sf_envelope_t *env = sf_wire_decode (frame, &err);
    assert (env && env->body_case == SF_BODY_INVENTORY);
    zstr_free (&command);
    zframe_destroy (&frame);
    return env;
}

void
sf_scan_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_scan: ");
    //  @selftest
    char dir [] = "/tmp/sf-scan-test-XXXXXX";
    assert (mkdtemp (dir));
    sf_scan_args_t args = { "test:///default", dir, "run-1" };
    zactor_t *scanner = zactor_new (sf_scan_actor, &args);
    assert (scanner);
    sf_envelope_t *env = s_test_scan (scanner);
    assert (env->inventory->n_instances == 1);
    const sf_instance_t *inst = sf_scan_find (env, "6695EB01-F6A4-8304-79AA-97F2502E193F");
    assert (inst && streq (inst->name, "test") && inst->state == SF_STATE_RUNNING);
    assert (streq (inst->storage_class, "file") && inst->n_disks == 1);
    assert (streq (inst->disks [0]->target, "vda"));
    assert (streq (inst->disks [0]->source, "/guest/diskimage1"));
    assert (inst->disks [0]->type == SF_DISK_FILE);
    assert (sf_scan_find (env, "nope") == NULL);
    //  The same state encodes to the same bytes (the agent's change test)
    sf_envelope_t *again = s_test_scan (scanner);
    assert (again->inventory->n_instances == 1);
    sf_wire_free (&again);
    sf_wire_free (&env);
    zactor_destroy (&scanner);

    //  An unreachable hypervisor is reported, not fatal
    args.uri = "nosuch:///x";
    scanner = zactor_new (sf_scan_actor, &args);
    zstr_send (scanner, "SCAN");
    char *command = NULL, *text = NULL;
    assert (zsock_recv (scanner, "ss", &command, &text) == 0);
    assert (streq (command, "FAILED") && strlen (text) > 0);
    zstr_free (&command);
    zstr_free (&text);
    zactor_destroy (&scanner);

    //  Instance tags from the domain XML's metadata
    char *node = zsys_sprintf ("%s/node.xml", dir);
    FILE *file = fopen (node, "w");
    assert (file);
    fprintf (file,
        "<node><domain type='test'>\n"
        " <name>tagged</name><uuid>11111111-2222-3333-4444-777777777777</uuid>\n"
        " <metadata><sf:tags xmlns:sf='urn:snapfleet:tags:1'>\n"
        "  <sf:tag key='tier' value='gold'/><sf:tag key='bad key' value='x'/>\n"
        "  <sf:tag key='site' value='Zürich'/></sf:tags></metadata>\n"
        " <memory>65536</memory><os><type>hvm</type></os>\n"
        "</domain></node>\n");
    fclose (file);
    char *uri = zsys_sprintf ("test://%s", node);
    args.uri = uri;
    scanner = zactor_new (sf_scan_actor, &args);
    env = s_test_scan (scanner);
    inst = sf_scan_find (env, "11111111-2222-3333-4444-777777777777");
    assert (inst && inst->n_tags == 2);
    assert (streq (inst->tags [0]->key, "tier") && streq (inst->tags [0]->value, "gold"));
    assert (streq (inst->tags [1]->key, "site") && streq (inst->tags [1]->value, "Zürich"));
    sf_wire_free (&env);
    zactor_destroy (&scanner);
    unlink (node);
    zstr_free (&uri);
    zstr_free (&node);
    rmdir (dir);
    //  @end
    printf ("OK\n");
}
