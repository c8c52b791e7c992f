/*  =========================================================================
    sf_hv_libvirt - libvirt hypervisor driver

    One virConnectPtr per sf_hv_t. libvirt connections are thread-safe, but
    each worker thread (scanner, task) opens its own: that keeps a hung call
    from one job out of the others and makes test:///default (whose state
    lives in the connection) behave like one node per thread.
    Disks come from the live domain XML, parsed with libxml2.
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

SF_LOG_MODULE ("worker.libvirt");

//  libvirt prints every error on stderr unless told otherwise; we report
//  them through sf_err_t instead.

static void
s_silent (void *user, virErrorPtr error)
{
    (void) user;
    (void) error;
}

//  Set err from libvirt's last error (thread-local). Returns -1.

static int
s_error (sf_err_t *err, const char *what, const char *subject)
{
    virErrorPtr verr = virGetLastError ();
    int code = verr && verr->code == VIR_ERR_NO_DOMAIN ? SF_ENOENT : SF_EHV;
    const char *message = verr && verr->message ? verr->message : "unknown libvirt error";
    return sf_err_set (err, code, "cannot %s '%s': %s", what, subject, message);
}

static virConnectPtr
s_conn (sf_hv_t *self)
{
    return (virConnectPtr) sf_hv_priv (self);
}

static int
s_open (sf_hv_t *self, const char *uri, sf_err_t *err)
{
    virSetErrorFunc (NULL, s_silent);
    virConnectPtr conn = virConnectOpen (uri);
    if (!conn)
        return s_error (err, "connect to hypervisor", uri);
    sf_hv_set_priv (self, conn);
    return 0;
}

static void
s_close (sf_hv_t *self)
{
    virConnectPtr conn = s_conn (self);
    virConnectClose (conn);
    sf_hv_set_priv (self, NULL);
}

static int
s_map_state (int state)
{
    switch (state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:    return SF_HV_RUNNING;
        case VIR_DOMAIN_PAUSED:     return SF_HV_PAUSED;
        case VIR_DOMAIN_SHUTOFF:    return SF_HV_SHUTOFF;
        default:                    return SF_HV_OTHER;
    }
}

//  --------------------------------------------------------------------------
//  Domain XML -> disks and tags

//  Attribute as a malloc'd string ("" if absent)

static char *
s_attr (xmlNodePtr node, const char *name)
{
    xmlChar *value = node ? xmlGetProp (node, BAD_CAST name) : NULL;
    char *copy = strdup (value ? (const char *) value : "");
    xmlFree (value);
    return copy;
}

static xmlNodePtr
s_child (xmlNodePtr node, const char *name)
{
    for (xmlNodePtr child = node->children; child; child = child->next)
        if (child->type == XML_ELEMENT_NODE && xmlStrEqual (child->name, BAD_CAST name))
            return child;
    return NULL;
}

//  Source of a disk by its type: file, dev, protocol+name, or pool/volume

static void
s_disk_source (sf_hv_disk_t *disk, const char *type, xmlNodePtr source)
{
    disk->protocol = strdup ("");
    if (streq (type, "file")) {
        disk->type = SF_DISK_FILE;
        disk->source = s_attr (source, "file");
    }
    else
    if (streq (type, "block")) {
        disk->type = SF_DISK_BLOCK;
        disk->source = s_attr (source, "dev");
    }
    else
    if (streq (type, "network")) {
        free (disk->protocol);
        disk->protocol = s_attr (source, "protocol");
        disk->type = streq (disk->protocol, "rbd") ? SF_DISK_RBD : SF_DISK_OTHER;
        disk->source = s_attr (source, "name");
    }
    else
    if (streq (type, "volume")) {
        char *pool = s_attr (source, "pool");
        char *volume = s_attr (source, "volume");
        disk->source = *pool ? zsys_sprintf ("%s/%s", pool, volume) : strdup ("");
        free (pool);
        free (volume);
    }
    else
        disk->source = strdup ("");
}

static sf_hv_disk_t *
s_disk_parse (xmlNodePtr node)
{
    sf_hv_disk_t *disk = sf_hv_disk_new ();
    char *type = s_attr (node, "type");
    disk->device = s_attr (node, "device");
    if (!*disk->device) {
        free (disk->device);
        disk->device = strdup ("disk");
    }
    //  No format in the XML means raw, as QEMU itself reads it: never the
    //  format a probe would find (a guest can write any header into its
    //  raw disk, a qcow2 one with a backing file of its choosing included)
    disk->format = s_attr (s_child (node, "driver"), "type");
    if (!*disk->format) {
        free (disk->format);
        disk->format = strdup ("raw");
    }
    disk->target = s_attr (s_child (node, "target"), "dev");
    s_disk_source (disk, type, s_child (node, "source"));
    free (type);
    return disk;
}

//  Tags from <metadata><X:tags xmlns:X="urn:snapfleet:tags:1"><X:tag key=
//  value=/>: the tags element by namespace URI, whatever its prefix; its
//  tag children in that namespace (or none: hand-written XML may leave the
//  children unqualified). A bad tag is skipped with a warning.

static bool
s_in_tags_ns (xmlNodePtr node, bool or_none)
{
    if (!node->ns)
        return or_none;
    return node->ns->href && xmlStrEqual (node->ns->href, BAD_CAST SF_HV_TAGS_NS);
}

static void
s_tags_parse (sf_hv_domain_t *domain, xmlNodePtr metadata)
{
    for (xmlNodePtr tags = metadata->children; tags; tags = tags->next) {
        if (tags->type != XML_ELEMENT_NODE || !xmlStrEqual (tags->name, BAD_CAST "tags")
        ||  !s_in_tags_ns (tags, false))
            continue;
        for (xmlNodePtr node = tags->children; node; node = node->next) {
            if (node->type != XML_ELEMENT_NODE || !xmlStrEqual (node->name, BAD_CAST "tag")
            ||  !s_in_tags_ns (node, true))
                continue;
            xmlChar *key = xmlGetProp (node, BAD_CAST "key");
            xmlChar *value = xmlGetProp (node, BAD_CAST "value");
            sf_err_t err = SF_ERR_INIT;
            if (!key || !value)
                sf_err_set (&err, SF_EINVAL, "a tag without %s", key ? "a value" : "a key");
            else
                sf_hv_domain_tag_add (domain, (const char *) key, (const char *) value, &err);
            if (err.code)
                SF_WARN (NULL, "domain '%s': tag skipped: %s", domain->name, err.text);
            xmlFree (key);
            xmlFree (value);
        }
    }
}

static int
s_domain_from_xml (sf_hv_domain_t *domain, const char *xml, sf_err_t *err)
{
    int rc = -1;
    xmlXPathContextPtr xpath = NULL;
    xmlXPathObjectPtr result = NULL;
    xmlDocPtr doc = xmlReadMemory (xml, (int) strlen (xml), "domain.xml", NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        sf_err_set (err, SF_EHV, "cannot parse the XML of domain '%s'", domain->name);
        goto cleanup;
    }
    xpath = xmlXPathNewContext (doc);
    result = xpath ? xmlXPathEvalExpression (BAD_CAST "/domain/devices/disk", xpath) : NULL;
    if (!result) {
        sf_err_set (err, SF_EHV, "cannot read the disks of domain '%s'", domain->name);
        goto cleanup;
    }
    xmlNodeSetPtr nodes = result->nodesetval;
    for (int i = 0; nodes && i < nodes->nodeNr; i++)
        zlistx_add_end (domain->disks, s_disk_parse (nodes->nodeTab [i]));
    xmlNodePtr root = xmlDocGetRootElement (doc);
    xmlNodePtr metadata = root ? s_child (root, "metadata") : NULL;
    if (metadata)
        s_tags_parse (domain, metadata);
    rc = 0;
 cleanup:
    xmlXPathFreeObject (result);
    xmlXPathFreeContext (xpath);
    xmlFreeDoc (doc);
    return rc;
}

//  --------------------------------------------------------------------------
//  Read one domain into a value

static sf_hv_domain_t *
s_domain_read (virDomainPtr dom, sf_err_t *err)
{
    char uuid [VIR_UUID_STRING_BUFLEN];
    const char *name = virDomainGetName (dom);
    if (virDomainGetUUIDString (dom, uuid) || !name) {
        s_error (err, "read domain", name ? name : "?");
        return NULL;
    }
    int state, reason;
    if (virDomainGetState (dom, &state, &reason, 0)) {
        s_error (err, "get the state of domain", name);
        return NULL;
    }
    char *xml = virDomainGetXMLDesc (dom, 0);
    if (!xml) {
        s_error (err, "get the XML of domain", name);
        return NULL;
    }
    sf_hv_domain_t *domain = sf_hv_domain_new (uuid, name, s_map_state (state));
    if (s_domain_from_xml (domain, xml, err))
        sf_hv_domain_destroy (&domain);
    free (xml);
    return domain;
}

static int
s_list (sf_hv_t *self, zlistx_t *list, sf_err_t *err)
{
    virDomainPtr *doms = NULL;
    int count = virConnectListAllDomains (s_conn (self), &doms, 0);
    if (count < 0)
        return s_error (err, "list domains of", sf_hv_uri (self));
    int rc = 0;
    for (int i = 0; i < count; i++) {
        sf_err_t dom_err = SF_ERR_INIT;
        sf_hv_domain_t *domain = s_domain_read (doms [i], &dom_err);
        if (domain)
            zlistx_add_end (list, domain);
        else    //  a domain that vanished while listing is not an error
            SF_DEBUG (NULL, "%s", dom_err.text);
        virDomainFree (doms [i]);
    }
    free (doms);
    return rc;
}

static virDomainPtr
s_lookup_dom (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = virDomainLookupByUUIDString (s_conn (self), uuid);
    if (!dom) {
        s_error (err, "find domain", uuid);
        if (err && err->code == SF_ENOENT)
            sf_err_set (err, SF_ENOENT, "no domain with uuid '%s'", uuid);
    }
    return dom;
}

static sf_hv_domain_t *
s_lookup (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return NULL;
    sf_hv_domain_t *domain = s_domain_read (dom, err);
    virDomainFree (dom);
    return domain;
}

static int
s_state (sf_hv_t *self, const char *uuid, int *state, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int vstate, reason, rc = 0;
    if (virDomainGetState (dom, &vstate, &reason, 0))
        rc = s_error (err, "get the state of domain", uuid);
    else
        *state = s_map_state (vstate);
    virDomainFree (dom);
    return rc;
}

static int
s_suspend (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = virDomainSuspend (dom) ? s_error (err, "suspend domain", uuid) : 0;
    virDomainFree (dom);
    return rc;
}

static int
s_resume (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = virDomainResume (dom) ? s_error (err, "resume domain", uuid) : 0;
    virDomainFree (dom);
    return rc;
}

//  Freezing is unavailable without an agent channel (ARGUMENT_UNSUPPORTED
//  "argument unsupported: QEMU guest agent is not configured") or without an
//  agent answering on it (AGENT_UNRESPONSIVE "Guest agent is not responding:
//  QEMU guest agent is not connected"): then the text is the reason alone,
//  after the code's own words (notes/libvirt.md).

static int
s_agent_error (sf_err_t *err, const char *what, const char *uuid)
{
    virErrorPtr verr = virGetLastError ();
    if (verr && verr->message && (verr->code == VIR_ERR_ARGUMENT_UNSUPPORTED
                               || verr->code == VIR_ERR_AGENT_UNRESPONSIVE)) {
        const char *reason = strstr (verr->message, ": ");
        return sf_err_set (err, SF_ENOTSUP, "%s", reason ? reason + 2 : verr->message);
    }
    return s_error (err, what, uuid);
}

static int
s_fs_freeze (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int count = virDomainFSFreeze (dom, NULL, 0, 0);
    int rc = count < 0 ? s_agent_error (err, "freeze the filesystems of domain", uuid) : 0;
    if (count >= 0)
        SF_DEBUG (NULL, "froze %d filesystem(s) of '%s'", count, uuid);
    virDomainFree (dom);
    return rc;
}

static int
s_fs_thaw (sf_hv_t *self, const char *uuid, sf_err_t *err)
{
    virDomainPtr dom = s_lookup_dom (self, uuid, err);
    if (!dom)
        return -1;
    int rc = virDomainFSThaw (dom, NULL, 0, 0) < 0
           ? s_agent_error (err, "thaw the filesystems of domain", uuid) : 0;
    virDomainFree (dom);
    return rc;
}

const sf_hv_driver_t sf_hv_libvirt_driver = {
    .name      = "libvirt",
    .open      = s_open,
    .close     = s_close,
    .list      = s_list,
    .lookup    = s_lookup,
    .state     = s_state,
    .suspend   = s_suspend,
    .resume    = s_resume,
    .fs_freeze = s_fs_freeze,
    .fs_thaw   = s_fs_thaw,
};
