/*  =========================================================================
    sf_hv_domxml - a copy of a domain's XML for a restored disk (issue 13):
    what restore --as-domain defines and what verify --boot starts

    The copy has the new name, no <uuid> (the hypervisor makes a new one),
    no domain id, and no <mac> in its interfaces (new ones are made); the
    disk whose target is the restored one's points at the restored file
    (type 'file', the restored format, no backing chain, auth or mirror);
    every other data disk (device 'disk' or 'lun') is left out, since it
    was not restored; CD-ROMs and floppies stay. A unix channel loses its
    socket path (the hypervisor makes one: two domains cannot bind one).
    A transient copy (verify) also has no interfaces (no network), no host
    devices, no graphics, no metadata (no tags, so no schedule picks it)
    and its serial port and console go to a file it names.

    The XML is parsed without network access or entity expansion.
    =========================================================================
*/
#ifndef SF_HV_DOMXML_H_INCLUDED
#define SF_HV_DOMXML_H_INCLUDED

typedef struct {
    const char *name;           //  the copy's name (a safe name)
    const char *disk_target;    //  the restored disk's target ("vda")
    const char *file;           //  its restored file (absolute path)
    const char *format;         //  its format ("qcow2", "raw")
    const char *console;        //  NULL: keep serial and console; a path:
                                //  both to this file (and transient)
    bool transient;             //  no network, host devices, graphics
} sf_hv_domxml_t;

//  Make the copy of xml. Returns a new string (caller frees it) or NULL
//  with err (SF_EINVAL: not a domain's XML, no disk of that target). If
//  source is not NULL it gets the original disk's file or device path (a
//  new string, "" if it had none): its owner is whom QEMU runs as. If
//  dropped is not NULL it gets how many data disks were left out.
char *
    sf_hv_domxml_copy (const char *xml, const sf_hv_domxml_t *spec, char **source,
                       int *dropped, sf_err_t *err);

//  Self test of this class
void
    sf_hv_domxml_test (bool verbose);

#endif
