/*  =========================================================================
    sf_hv_domxml - a copy of a domain's XML for a restored disk (see the
    header)
    =========================================================================
*/
#include "sf_worker_classes.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

SF_LOG_MODULE ("worker.domxml");

static bool
s_is (xmlNodePtr node, const char *name)
{
    return node->type == XML_ELEMENT_NODE && xmlStrEqual (node->name, BAD_CAST name);
}

static xmlNodePtr
s_child (xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr node = parent->children; node; node = node->next)
        if (s_is (node, name))
            return node;
    return NULL;
}

static void
s_drop (xmlNodePtr node)
{
    xmlUnlinkNode (node);
    xmlFreeNode (node);
}

//  Remove every child element of parent named name

static void
s_drop_all (xmlNodePtr parent, const char *name)
{
    xmlNodePtr node = parent->children;
    while (node) {
        xmlNodePtr next = node->next;
        if (s_is (node, name))
            s_drop (node);
        node = next;
    }
}

//  An attribute's value as a new string ("" if absent)

static char *
s_attr (xmlNodePtr node, const char *name)
{
    xmlChar *value = xmlGetProp (node, BAD_CAST name);
    char *copy = strdup (value ? (const char *) value : "");
    xmlFree (value);
    return copy;
}

//  The restored disk: a file of the restored format, nothing else below

static void
s_point (xmlNodePtr disk, const sf_hv_domxml_t *spec, char **source)
{
    xmlNodePtr node = s_child (disk, "source");
    if (source) {
        free (*source);
        *source = node ? s_attr (node, xmlHasProp (node, BAD_CAST "file") ? "file" : "dev")
                       : strdup ("");
    }
    const char *gone [] = { "source", "backingStore", "auth", "mirror", "encryption" };
    for (size_t i = 0; i < sizeof (gone) / sizeof (gone [0]); i++)
        s_drop_all (disk, gone [i]);
    xmlSetProp (disk, BAD_CAST "type", BAD_CAST "file");
    xmlNodePtr driver = s_child (disk, "driver");
    if (!driver) {
        driver = xmlNewChild (disk, NULL, BAD_CAST "driver", NULL);
        xmlSetProp (driver, BAD_CAST "name", BAD_CAST "qemu");
    }
    xmlSetProp (driver, BAD_CAST "type", BAD_CAST spec->format);
    xmlNodePtr src = xmlNewNode (NULL, BAD_CAST "source");
    xmlSetProp (src, BAD_CAST "file", BAD_CAST spec->file);
    xmlAddNextSibling (driver, src);
}

//  The devices: disks, interfaces, channels, and for a transient copy the
//  rest. Returns 0 or -1 with err (no disk of the target).

static int
s_devices (xmlNodePtr devices, const sf_hv_domxml_t *spec, char **source, int *dropped,
           sf_err_t *err)
{
    int found = 0, left_out = 0;
    xmlNodePtr node = devices->children;
    while (node) {
        xmlNodePtr next = node->next;
        if (s_is (node, "disk")) {
            char *device = s_attr (node, "device");
            bool data = !*device || streq (device, "disk") || streq (device, "lun");
            free (device);
            xmlNodePtr target = s_child (node, "target");
            char *dev = target ? s_attr (target, "dev") : strdup ("");
            if (data && streq (dev, spec->disk_target)) {
                s_point (node, spec, source);
                found++;
            }
            else
            if (data) {
                s_drop (node);
                left_out++;
            }
            free (dev);
        }
        else
        if (s_is (node, "interface")) {
            if (spec->transient)
                s_drop (node);
            else {
                s_drop_all (node, "mac");
                s_drop_all (node, "target");
            }
        }
        else
        if (s_is (node, "channel")) {
            xmlNodePtr src = s_child (node, "source");
            if (src && xmlHasProp (src, BAD_CAST "path"))
                xmlUnsetProp (src, BAD_CAST "path");
        }
        else
        if (spec->transient && (s_is (node, "hostdev") || s_is (node, "graphics")
                             || s_is (node, "redirdev") || s_is (node, "smartcard")))
            s_drop (node);
        else
        if (spec->console && (s_is (node, "serial") || s_is (node, "console")))
            s_drop (node);
        node = next;
    }
    if (found != 1)
        return sf_err_set (err, SF_EINVAL, "the domain's XML has %s data disk of target "
                           "'%s'", found ? "more than one" : "no", spec->disk_target);
    if (spec->console) {
        xmlNodePtr serial = xmlNewChild (devices, NULL, BAD_CAST "serial", NULL);
        xmlSetProp (serial, BAD_CAST "type", BAD_CAST "file");
        xmlNodePtr src = xmlNewChild (serial, NULL, BAD_CAST "source", NULL);
        xmlSetProp (src, BAD_CAST "path", BAD_CAST spec->console);
        xmlNodePtr target = xmlNewChild (serial, NULL, BAD_CAST "target", NULL);
        xmlSetProp (target, BAD_CAST "port", BAD_CAST "0");
    }
    if (dropped)
        *dropped = left_out;
    return 0;
}

char *
sf_hv_domxml_copy (const char *xml, const sf_hv_domxml_t *spec, char **source,
                   int *dropped, sf_err_t *err)
{
    assert (xml && spec && spec->name && spec->disk_target && spec->file && spec->format);
    if (source)
        *source = NULL;
    if (!sf_name_is_safe (spec->name))
        return (sf_err_set (err, SF_EINVAL, "domain name is not a safe name"), NULL);
    xmlDocPtr doc = xmlReadMemory (xml, (int) strnlen (xml, SF_WIRE_MAX_XML + 1), NULL, NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement (doc) : NULL;
    char *copy = NULL;
    if (!root || !s_is (root, "domain")) {
        sf_err_set (err, SF_EINVAL, "the XML kept with the image is not a domain's");
        goto done;
    }
    xmlNodePtr devices = s_child (root, "devices");
    if (!devices) {
        sf_err_set (err, SF_EINVAL, "the domain's XML has no devices");
        goto done;
    }
    if (s_devices (devices, spec, source, dropped, err))
        goto done;
    xmlUnsetProp (root, BAD_CAST "id");
    s_drop_all (root, "uuid");
    if (spec->transient)
        s_drop_all (root, "metadata");
    xmlNodePtr name = s_child (root, "name");
    if (!name)
        name = xmlNewChild (root, NULL, BAD_CAST "name", NULL);
    xmlNodeSetContent (name, BAD_CAST spec->name);      //  a safe name: nothing to escape
    xmlChar *text = NULL;
    int size = 0;
    xmlDocDumpMemory (doc, &text, &size);
    if (text)
        copy = strdup ((const char *) text);
    xmlFree (text);
    if (!copy)
        sf_err_set (err, SF_EINVAL, "cannot write the domain's XML");
done:
    if (!copy && source) {
        free (*source);
        *source = NULL;
    }
    else
    if (source && !*source)
        *source = strdup ("");
    xmlFreeDoc (doc);
    return copy;
}

//  --------------------------------------------------------------------------
//  Self test

void
sf_hv_domxml_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_hv_domxml: ");
    //  @selftest
    const char *xml =
        "<domain type='qemu' id='7'><name>g1</name>"
        "<uuid>0b5e0c35-2d1f-4c6a-9d43-1b2f3a4c5d6e</uuid>"
        "<metadata><sf:tags xmlns:sf='urn:snapfleet:tags:1'/></metadata>"
        "<devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        "<source file='/srv/g1/disk.img'/><backingStore/><target dev='vda' bus='virtio'/>"
        "</disk>"
        "<disk type='network' device='disk'><source protocol='rbd' name='rbd/g1'/>"
        "<target dev='vdb'/></disk>"
        "<disk type='file' device='cdrom'><source file='/srv/iso'/><target dev='sda'/></disk>"
        "<interface type='network'><mac address='52:54:00:00:00:01'/>"
        "<source network='default'/></interface>"
        "<channel type='unix'><source mode='bind' path='/srv/g1/qga.sock'/>"
        "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
        "<serial type='file'><source path='/srv/g1/console.log'/></serial>"
        "<graphics type='vnc' port='5901'/>"
        "</devices></domain>";
    sf_err_t err = SF_ERR_INIT;
    sf_hv_domxml_t spec = { .name = "g1-copy", .disk_target = "vda",
                            .file = "/srv/r/g1 & co.qcow2", .format = "qcow2" };
    char *source = NULL;
    int dropped = -1;
    char *copy = sf_hv_domxml_copy (xml, &spec, &source, &dropped, &err);
    assert (copy);
    assert (streq (source, "/srv/g1/disk.img") && dropped == 1);
    assert (strstr (copy, "<name>g1-copy</name>") && !strstr (copy, "<uuid>"));
    assert (!strstr (copy, "id=\"7\"") && !strstr (copy, "52:54:00"));
    assert (strstr (copy, "/srv/r/g1 &amp; co.qcow2") && !strstr (copy, "disk.img"));
    assert (strstr (copy, "type=\"qcow2\"") && !strstr (copy, "backingStore"));
    assert (!strstr (copy, "rbd/g1") && strstr (copy, "/srv/iso"));
    assert (strstr (copy, "<interface") && !strstr (copy, "qga.sock"));
    assert (strstr (copy, "console.log") && strstr (copy, "vnc") && strstr (copy, "sf:tags"));
    free (copy);
    free (source);
    //  A transient copy: no network, graphics or tags, console to a file
    spec.transient = true, spec.console = "/scratch/console.log";
    copy = sf_hv_domxml_copy (xml, &spec, NULL, NULL, &err);
    assert (copy && !strstr (copy, "<interface") && !strstr (copy, "vnc"));
    assert (!strstr (copy, "sf:tags") && !strstr (copy, "/srv/g1/console.log"));
    assert (strstr (copy, "/scratch/console.log"));
    free (copy);
    //  Refusals
    spec.disk_target = "vdc";
    assert (!sf_hv_domxml_copy (xml, &spec, &source, NULL, &err) && err.code == SF_EINVAL);
    assert (strstr (err.text, "no data disk of target 'vdc'") && !source);
    spec.disk_target = "sda";       //  a CD-ROM is not a data disk
    assert (!sf_hv_domxml_copy (xml, &spec, NULL, NULL, &err));
    spec.disk_target = "vda";
    assert (!sf_hv_domxml_copy ("<network/>", &spec, NULL, NULL, &err));
    assert (strstr (err.text, "not a domain's"));
    assert (!sf_hv_domxml_copy ("<domain><devices>", &spec, NULL, NULL, &err));
    assert (!sf_hv_domxml_copy ("<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
                                "<domain><name>&e;</name><devices/></domain>", &spec,
                                NULL, NULL, &err));
    spec.name = "a b";
    assert (!sf_hv_domxml_copy (xml, &spec, NULL, NULL, &err));
    //  @end
    printf ("OK\n");
}
