/*  =========================================================================
    sf_wire - pack/unpack and validate sf.v1.Envelope frames

    protobuf-c's unpacker already rejects truncated and malformed input; on
    top of that we enforce the size cap before unpacking and field bounds
    after, so that no later code sees an absurd message.
    =========================================================================
*/
#include "sf_core.h"

static int
s_check_string (const char *value, const char *field, sf_err_t *err)
{
    if (value && strnlen (value, SF_WIRE_MAX_STRING + 1) > SF_WIRE_MAX_STRING)
        return sf_err_set (err, SF_EPROTO, "field '%s' longer than %d bytes",
                           field, SF_WIRE_MAX_STRING);
    if (value && !sf_utf8_valid (value))
        return sf_err_set (err, SF_EPROTO, "field '%s' is not valid UTF-8", field);
    return 0;
}

//  A number within 0..max (see the ranges in sf_wire.h)

static int
s_check_range (uint64_t value, uint64_t max, const char *field, sf_err_t *err)
{
    if (value > max)
        return sf_err_set (err, SF_EPROTO, "field '%s' is %" PRIu64 ", outside 0..%" PRIu64,
                           field, value, max);
    return 0;
}

static int
s_require (const char *value, const char *field, sf_err_t *err)
{
    if (!value || !*value)
        return sf_err_set (err, SF_EPROTO, "required field '%s' is empty", field);
    return s_check_string (value, field, err);
}

//  A domain's XML: at most SF_WIRE_MAX_XML bytes of UTF-8 (sf_wire_scan
//  already refused a NUL byte in it)

static int
s_check_xml (const char *value, const char *field, sf_err_t *err)
{
    if (value && strnlen (value, SF_WIRE_MAX_XML + 1) > SF_WIRE_MAX_XML)
        return sf_err_set (err, SF_EPROTO, "field '%s' longer than %d bytes",
                           field, SF_WIRE_MAX_XML);
    if (value && !sf_utf8_valid (value))
        return sf_err_set (err, SF_EPROTO, "field '%s' is not valid UTF-8", field);
    return 0;
}

static int
s_check_disk (const sf_disk_t *disk, sf_err_t *err)
{
    if (disk->type < 0 || disk->type > SF_DISK_OTHER)
        return sf_err_set (err, SF_EPROTO, "disk type %d out of range", disk->type);
    if (disk->n_backing_chain > SF_WIRE_MAX_CHAIN)
        return sf_err_set (err, SF_EPROTO, "backing chain deeper than %d",
                           SF_WIRE_MAX_CHAIN);
    for (size_t i = 0; i < disk->n_backing_chain; i++)
        if (s_check_string (disk->backing_chain [i], "disk.backing_chain", err))
            return -1;
    if (s_check_range (disk->virtual_size, SF_WIRE_MAX_SIZE, "disk.virtual_size", err)
    ||  s_check_range (disk->allocated_size, SF_WIRE_MAX_SIZE, "disk.allocated_size", err))
        return -1;
    if (s_check_string (disk->target, "disk.target", err)
    ||  s_check_string (disk->source, "disk.source", err)
    ||  s_check_string (disk->format, "disk.format", err)
    ||  s_check_string (disk->device, "disk.device", err))
        return -1;
    return 0;
}

static int
s_check_inventory (const sf_inventory_t *inv, sf_err_t *err)
{
    if (inv->n_instances > SF_WIRE_MAX_INSTANCES)
        return sf_err_set (err, SF_EPROTO, "inventory has more than %d instances",
                           SF_WIRE_MAX_INSTANCES);
    for (size_t i = 0; i < inv->n_instances; i++) {
        const sf_instance_t *inst = inv->instances [i];
        if (s_require (inst->uuid, "instance.uuid", err)
        ||  s_require (inst->name, "instance.name", err)
        ||  s_check_string (inst->storage_class, "instance.storage_class", err))
            return -1;
        if (inst->state < 0 || inst->state > SF_STATE_OTHER)
            return sf_err_set (err, SF_EPROTO, "instance state %d out of range", inst->state);
        if (inst->n_disks > SF_WIRE_MAX_DISKS)
            return sf_err_set (err, SF_EPROTO, "instance has more than %d disks",
                               SF_WIRE_MAX_DISKS);
        for (size_t d = 0; d < inst->n_disks; d++)
            if (s_check_disk (inst->disks [d], err))
                return -1;
        if (inst->n_tags > SF_WIRE_MAX_TAGS)
            return sf_err_set (err, SF_EPROTO, "instance has more than %d tags",
                               SF_WIRE_MAX_TAGS);
        for (size_t t = 0; t < inst->n_tags; t++)
            if (s_require (inst->tags [t]->key, "tag.key", err)
            ||  s_check_string (inst->tags [t]->value, "tag.value", err))
                return -1;
    }
    return 0;
}

static int
s_check_image (const sf_image_t *img, sf_err_t *err)
{
    if (s_check_string (img->store, "image.store", err)
    ||  s_check_string (img->id, "image.id", err)
    ||  s_check_string (img->path, "image.path", err)
    ||  s_check_string (img->sha256, "image.sha256", err)
    ||  s_check_string (img->disk_target, "image.disk_target", err)
    ||  s_check_string (img->format, "image.format", err))
        return -1;
    if (s_check_string (img->parent_id, "image.parent_id", err)
    ||  s_check_string (img->checkpoint, "image.checkpoint", err))
        return -1;
    if (img->checkpoint && *img->checkpoint && !sf_wire_checkpoint_valid (img->checkpoint))
        return sf_err_set (err, SF_EPROTO, "image.checkpoint '%.64s' is not a snapfleet "
                           "checkpoint name", img->checkpoint);
    if (img->parent_id && img->id && *img->parent_id && streq (img->parent_id, img->id))
        return sf_err_set (err, SF_EPROTO, "image '%.64s' names itself as its parent",
                           img->id);
    return s_check_range (img->size, SF_WIRE_MAX_SIZE, "image.size", err)
        || s_check_range (img->own_bytes, SF_WIRE_MAX_SIZE, "image.own_bytes", err);
}

bool
sf_wire_checkpoint_valid (const char *name)
{
    size_t prefix = strlen (SF_WIRE_CHECKPOINT_PREFIX);
    return name && strncmp (name, SF_WIRE_CHECKPOINT_PREFIX, prefix) == 0
        && name [prefix] && sf_name_is_safe (name);
}

//  JobAssign.incremental: only for file-live, at most one base per disk
//  target, each a complete qcow2 image record with a snapfleet checkpoint

static int
s_check_incremental (const sf_job_assign_t *assign, sf_err_t *err)
{
    const sf_incremental_t *incr = assign->incremental;
    if (!incr)
        return 0;
    if (!assign->strategy || !streq (assign->strategy, "file-live"))
        return sf_err_set (err, SF_EPROTO, "job_assign.incremental is set for strategy "
                           "'%.32s', not file-live", assign->strategy? assign->strategy: "");
    if (incr->n_disks == 0 || incr->n_disks > SF_WIRE_MAX_DISKS)
        return sf_err_set (err, SF_EPROTO, "incremental has %zu disks (1 to %d)",
                           incr->n_disks, SF_WIRE_MAX_DISKS);
    for (size_t i = 0; i < incr->n_disks; i++) {
        const sf_incremental_disk_t *disk = incr->disks [i];
        const sf_image_t *base = disk->image;
        if (!base)
            return sf_err_set (err, SF_EPROTO, "required field 'incremental.disks.image' "
                               "is missing");
        if (s_check_image (base, err)
        ||  s_require (base->store, "incremental.base.store", err)
        ||  s_require (base->id, "incremental.base.id", err)
        ||  s_require (base->disk_target, "incremental.base.disk_target", err))
            return -1;
        if (!sf_name_is_safe (base->id) || !sf_name_is_safe (base->disk_target))
            return sf_err_set (err, SF_EPROTO, "incremental base '%.64s' of disk '%.32s' is "
                               "not a safe name", base->id, base->disk_target);
        if (!base->format || !streq (base->format, "qcow2"))
            return sf_err_set (err, SF_EPROTO, "incremental base '%.64s' is not qcow2",
                               base->id);
        if (!sf_wire_checkpoint_valid (disk->checkpoint))
            return sf_err_set (err, SF_EPROTO, "incremental checkpoint '%.64s' is not a "
                               "snapfleet checkpoint name",
                               disk->checkpoint? disk->checkpoint: "");
        for (size_t j = 0; j < i; j++)
            if (streq (incr->disks [j]->image->disk_target, base->disk_target))
                return sf_err_set (err, SF_EPROTO, "incremental names disk '%.32s' twice",
                                   base->disk_target);
    }
    return 0;
}

static int
s_check_result (const sf_job_result_t *res, sf_err_t *err)
{
    if (s_require (res->job_id, "job_result.job_id", err)
    ||  s_check_string (res->strategy, "job_result.strategy", err)
    ||  s_check_string (res->consistency, "job_result.consistency", err))
        return -1;
    if (s_check_range (res->pause_ms, SF_WIRE_MAX_MS, "job_result.pause_ms", err)
    ||  s_check_range (res->convert_ms, SF_WIRE_MAX_MS, "job_result.convert_ms", err)
    ||  s_check_range (res->upload_ms, SF_WIRE_MAX_MS, "job_result.upload_ms", err)
    ||  s_check_range (res->bytes, SF_WIRE_MAX_TOTAL, "job_result.bytes", err))
        return -1;
    if (res->n_images > SF_WIRE_MAX_IMAGES)
        return sf_err_set (err, SF_EPROTO, "result has more than %d images",
                           SF_WIRE_MAX_IMAGES);
    for (size_t i = 0; i < res->n_images; i++)
        if (s_check_image (res->images [i], err))
            return -1;
    if (res->error && s_check_string (res->error->text, "job_result.error.text", err))
        return -1;
    if (s_check_xml (res->domain_xml, "job_result.domain_xml", err)
    ||  s_check_string (res->full_reason, "job_result.full_reason", err))
        return -1;
    const sf_verify_result_t *verify = res->verify;
    if (verify && (s_check_string (verify->text, "job_result.verify.text", err)
               ||  s_check_range (verify->time_to_life_ms, SF_WIRE_MAX_MS,
                                  "job_result.verify.time_to_life_ms", err)))
        return -1;
    if (res->method && *res->method && !sf_wire_method_valid (res->method))
        return sf_err_set (err, SF_EPROTO, "job_result.method '%.40s' is not 1 to 48 "
                           "lowercase letters, digits and '-'", res->method);
    return 0;
}

bool
sf_wire_method_valid (const char *method)
{
    size_t length = method? strlen (method): 0;
    return length > 0 && length <= SF_WIRE_MAX_METHOD
        && strspn (method, "abcdefghijklmnopqrstuvwxyz0123456789-") == length;
}

//  An RBD image name: see sf_wire.h

int
sf_wire_rbd_name_check (const char *name, const char *field, sf_err_t *err)
{
    if (s_require (name, field, err))
        return -1;
    size_t length = strlen (name);
    if (length > SF_WIRE_MAX_RBD_NAME)
        return sf_err_set (err, SF_EINVAL, "%s is longer than %d bytes", field,
                           SF_WIRE_MAX_RBD_NAME);
    int parts = 1;
    for (const char *at = name; *at; at++) {
        unsigned char c = (unsigned char) *at;
        if (c <= 0x20 || c == 0x7f || c == '@' || c == ':' || c == '\\')
            return sf_err_set (err, SF_EINVAL, "%s '%.200s' has a space, a control "
                               "character, '@', ':' or '\\'", field, name);
        if (c == '/' && (at == name || at [1] == 0 || at [1] == '/'))
            return sf_err_set (err, SF_EINVAL, "%s '%.200s' has an empty component", field,
                               name);
        parts += c == '/';
    }
    if (parts < 2 || parts > 3)
        return sf_err_set (err, SF_EINVAL, "%s '%.200s' is not POOL/NAME or POOL/NAMESPACE/"
                           "NAME", field, name);
    return 0;
}

//  A restore's target file: see sf_wire.h

int
sf_wire_path_check (const char *path, const char *field, sf_err_t *err)
{
    if (s_require (path, field, err))
        return -1;
    if (*path != '/')
        return sf_err_set (err, SF_EINVAL, "%s '%.200s' is not an absolute path", field, path);
    if (strlen (path) >= SF_WIRE_MAX_PATH)
        return sf_err_set (err, SF_EINVAL, "%s is longer than %d bytes", field,
                           SF_WIRE_MAX_PATH - 1);
    for (const char *at = path; *at; at++)
        if ((unsigned char) *at < 0x20 || *at == 0x7f)
            return sf_err_set (err, SF_EINVAL, "%s has a control character", field);
    //  Every component: not ".", not "..", not empty (but a trailing '/'
    //  names a directory, not a file)
    for (const char *at = path + 1; ; ) {
        const char *end = strchr (at, '/');
        size_t length = end? (size_t) (end - at): strlen (at);
        if (length == 0 || (length == 1 && at [0] == '.')
        ||  (length == 2 && at [0] == '.' && at [1] == '.'))
            return sf_err_set (err, SF_EINVAL, "%s '%.200s' has an empty, '.' or '..' "
                               "component (give the path as it is)", field, path);
        if (!end)
            break;
        at = end + 1;
    }
    return 0;
}

bool
sf_wire_restore_format_valid (const char *format)
{
    return format && (streq (format, "qcow2") || streq (format, "raw"));
}

//  JobAssign.restore: set exactly for strategy "restore", an image with
//  its id, path, format and SHA-256 (none for an RBD clone), one target
//  (a file, an RBD image, or as_domain alone), a known format

static int
s_check_restore (const sf_job_assign_t *assign, sf_err_t *err)
{
    const sf_restore_t *restore = assign->restore;
    bool is_restore = assign->strategy && streq (assign->strategy, SF_WIRE_RESTORE);
    if (!restore)
        return is_restore? sf_err_set (err, SF_EPROTO, "job_assign of strategy '%s' has no "
                                       "restore", SF_WIRE_RESTORE): 0;
    if (!is_restore)
        return sf_err_set (err, SF_EPROTO, "job_assign.restore is set for strategy '%s', "
                           "not '%s'", assign->strategy, SF_WIRE_RESTORE);
    const sf_image_t *image = restore->image;
    if (!image)
        return sf_err_set (err, SF_EPROTO, "required field 'restore.image' is missing");
    if (s_check_image (image, err)
    ||  s_require (image->store, "restore.image.store", err)
    ||  s_require (image->id, "restore.image.id", err)
    ||  s_require (image->path, "restore.image.path", err)
    ||  s_require (image->format, "restore.image.format", err))
        return -1;
    if (!sf_wire_restore_format_valid (image->format))
        return sf_err_set (err, SF_EPROTO, "restore.image.format is '%.32s', not 'qcow2' "
                           "or 'raw'", image->format);
    //  A dir image has its SHA-256; an RBD clone has none (no bytes were
    //  copied) and is the image its id names
    bool rbd = streq (image->store, "rbd");
    if (rbd) {
        if (image->sha256 && *image->sha256)
            return sf_err_set (err, SF_EPROTO, "restore.image.sha256 is set for an RBD "
                               "image");
        if (strncmp (image->path, "rbd:", 4) || !streq (image->path + 4, image->id)
        ||  !streq (image->format, "raw"))
            return sf_err_set (err, SF_EPROTO, "restore.image of store 'rbd' is not a raw "
                               "image whose path is rbd:ID");
        if (sf_wire_rbd_name_check (image->id, "restore.image.id", err)) {
            err->code = SF_EPROTO;
            return -1;
        }
    }
    else
    if (!image->sha256 || strlen (image->sha256) != 64
    ||  strspn (image->sha256, "0123456789abcdef") != 64)
        return sf_err_set (err, SF_EPROTO, "restore.image.sha256 is not 64 lowercase hex "
                           "digits");
    if (s_check_string (restore->to_rbd, "restore.to_rbd", err)
    ||  s_check_string (restore->format, "restore.format", err))
        return -1;
    bool to_file = restore->to_file && *restore->to_file;
    bool to_rbd = restore->to_rbd && *restore->to_rbd;
    bool as_domain = restore->as_domain && *restore->as_domain;
    //  (as_domain alone: the worker puts the file beside the original's disk)
    if (to_file && to_rbd)
        return sf_err_set (err, SF_EPROTO, "restore needs exactly one of to_file and to_rbd");
    if (!to_file && !to_rbd && !as_domain)
        return sf_err_set (err, SF_EPROTO, "restore needs exactly one of to_file and to_rbd "
                           "(or as_domain alone)");
    if ((to_file && sf_wire_path_check (restore->to_file, "restore.to_file", err))
    ||  (to_rbd && sf_wire_rbd_name_check (restore->to_rbd, "restore.to_rbd", err))) {
        err->code = SF_EPROTO;
        return -1;
    }
    if (!sf_wire_restore_format_valid (restore->format))
        return sf_err_set (err, SF_EPROTO, "restore.format is '%.32s', not 'qcow2' or 'raw'",
                           restore->format? restore->format: "");
    if (s_check_string (restore->as_domain, "restore.as_domain", err)
    ||  s_check_xml (restore->domain_xml, "restore.domain_xml", err))
        return -1;
    if (as_domain && !sf_naming_domain_valid (restore->as_domain))
        return sf_err_set (err, SF_EPROTO, "restore.as_domain is not a domain name "
                           "snapfleet may define");
    if (as_domain != (restore->domain_xml && *restore->domain_xml))
        return sf_err_set (err, SF_EPROTO, "restore.as_domain and restore.domain_xml go "
                           "together");
    if (as_domain && to_rbd)
        return sf_err_set (err, SF_EPROTO, "restore.as_domain needs to_file");
    if (to_rbd && !streq (restore->format, "raw"))
        return sf_err_set (err, SF_EPROTO, "restore.format is '%s' for an RBD target (RBD "
                           "images are raw)", restore->format);
    if (restore->flatten && !(rbd && to_rbd))
        return sf_err_set (err, SF_EPROTO, "restore.flatten is set for a restore that is "
                           "not of an RBD image to RBD");
    return 0;
}

//  An image to read back (restore, verify): its store, id, path, a format
//  and SHA-256 (prefix names the field in errors)

static int
s_check_source (const sf_image_t *image, const char *prefix, sf_err_t *err)
{
    char name [64];
    if (!image)
        return sf_err_set (err, SF_EPROTO, "required field '%s.image' is missing", prefix);
    if (s_check_image (image, err))
        return -1;
    const char *fields [] = { "store", "id", "path", "format" };
    const char *values [] = { image->store, image->id, image->path, image->format };
    for (size_t i = 0; i < 4; i++) {
        snprintf (name, sizeof (name), "%s.image.%s", prefix, fields [i]);
        if (s_require (values [i], name, err))
            return -1;
    }
    if (!sf_wire_restore_format_valid (image->format))
        return sf_err_set (err, SF_EPROTO, "%s.image.format is '%.32s', not 'qcow2' or "
                           "'raw'", prefix, image->format);
    if (!image->sha256 || strlen (image->sha256) != 64
    ||  strspn (image->sha256, "0123456789abcdef") != 64)
        return sf_err_set (err, SF_EPROTO, "%s.image.sha256 is not 64 lowercase hex "
                           "digits", prefix);
    return 0;
}

//  JobAssign.verify: set exactly for strategy "verify", an image as a
//  restore's; with boot the original's XML (life_pattern "" and
//  boot_timeout_ms 0 leave them to the worker's [verify] settings)

static int
s_check_verify (const sf_job_assign_t *assign, sf_err_t *err)
{
    const sf_verify_t *verify = assign->verify;
    bool is_verify = assign->strategy && streq (assign->strategy, SF_WIRE_VERIFY);
    if (!verify)
        return is_verify? sf_err_set (err, SF_EPROTO, "job_assign of strategy '%s' has no "
                                      "verify", SF_WIRE_VERIFY): 0;
    if (!is_verify)
        return sf_err_set (err, SF_EPROTO, "job_assign.verify is set for strategy '%s', "
                           "not '%s'", assign->strategy, SF_WIRE_VERIFY);
    if (s_check_source (verify->image, "verify", err)
    ||  s_check_string (verify->life_pattern, "verify.life_pattern", err)
    ||  s_check_xml (verify->domain_xml, "verify.domain_xml", err)
    ||  s_check_range (verify->boot_timeout_ms, SF_WIRE_MAX_MS, "verify.boot_timeout_ms",
                       err))
        return -1;
    if (verify->life_pattern && strlen (verify->life_pattern) > SF_WIRE_MAX_PATTERN)
        return sf_err_set (err, SF_EPROTO, "verify.life_pattern longer than %d bytes",
                           SF_WIRE_MAX_PATTERN);
    if (verify->boot && (!verify->domain_xml || !*verify->domain_xml))
        return sf_err_set (err, SF_EPROTO, "verify.boot needs verify.domain_xml");
    return 0;
}

//  A list of holdings (field names list, e.g. "gc_remove.holdings"): at
//  most SF_WIRE_MAX_HOLDINGS, each of a known kind, with a name and a
//  job id that are safe identifiers where the kind has them (the names
//  of store entries and scratch directories are paths' last parts)

static int
s_check_holdings (sf_holding_t **holdings, size_t count, const char *list, sf_err_t *err)
{
    if (count > SF_WIRE_MAX_HOLDINGS)
        return sf_err_set (err, SF_EPROTO, "%s has more than %d entries", list,
                           SF_WIRE_MAX_HOLDINGS);
    for (size_t i = 0; i < count; i++) {
        const sf_holding_t *holding = holdings [i];
        if (holding->kind <= 0 || holding->kind > SF_HOLDING_LAST)
            return sf_err_set (err, SF_EPROTO, "%s: holding kind %d out of range", list,
                               holding->kind);
        if (s_require (holding->name, "holding.name", err)
        ||  s_require (holding->job_id, "holding.job_id", err)
        ||  s_check_string (holding->error, "holding.error", err)
        ||  s_check_range (holding->bytes, SF_WIRE_MAX_TOTAL, "holding.bytes", err)
        ||  s_check_range (holding->age_ms, SF_WIRE_MAX_TIME_MS, "holding.age_ms", err))
            return -1;
        if (!sf_name_is_safe (holding->job_id))
            return sf_err_set (err, SF_EPROTO, "%s: holding.job_id is not a safe "
                               "identifier", list);
        if (holding->kind != SF_HOLDING_SNAP && holding->kind != SF_HOLDING_CLONE
        &&  !sf_name_is_safe (holding->name))
            return sf_err_set (err, SF_EPROTO, "%s: holding.name of a %s is not a safe "
                               "identifier", list, sf_wire_holding_kind_name (holding->kind));
    }
    return 0;
}

static int
s_validate (const sf_envelope_t *env, sf_err_t *err)
{
    if (env->version != SF_WIRE_VERSION)
        return sf_err_set (err, SF_EPROTO, "protocol version %u, expected %d",
                           env->version, SF_WIRE_VERSION);
    switch (env->body_case) {
        case SF_BODY_HELLO:
            if (s_require (env->hello->node, "hello.node", err)
            ||  s_check_string (env->hello->software, "hello.software", err))
                return -1;
            if (!sf_name_is_safe (env->hello->node))
                return sf_err_set (err, SF_EPROTO, "node name is not a safe identifier");
            if (s_check_range (env->hello->max_jobs, SF_WIRE_MAX_JOBS, "hello.max_jobs", err)
            ||  s_check_range (env->hello->scratch_free, SF_WIRE_MAX_SIZE,
                               "hello.scratch_free", err))
                return -1;
            if (env->hello->n_strategies > SF_WIRE_MAX_STRATEGIES)
                return sf_err_set (err, SF_EPROTO, "hello has more than %d strategies",
                                   SF_WIRE_MAX_STRATEGIES);
            for (size_t i = 0; i < env->hello->n_strategies; i++)
                if (s_check_string (env->hello->strategies [i], "hello.strategies", err))
                    return -1;
            if (env->hello->n_running_jobs > SF_WIRE_MAX_RUNNING)
                return sf_err_set (err, SF_EPROTO, "hello has more than %d running jobs",
                                   SF_WIRE_MAX_RUNNING);
            for (size_t i = 0; i < env->hello->n_running_jobs; i++)
                if (s_require (env->hello->running_jobs [i], "hello.running_jobs", err))
                    return -1;
            if (env->hello->n_finished_jobs > SF_WIRE_MAX_RUNNING)
                return sf_err_set (err, SF_EPROTO, "hello has more than %d finished jobs",
                                   SF_WIRE_MAX_RUNNING);
            for (size_t i = 0; i < env->hello->n_finished_jobs; i++)
                if (s_require (env->hello->finished_jobs [i], "hello.finished_jobs", err))
                    return -1;
            if (s_check_range (env->hello->max_pause_ms, SF_WIRE_MAX_MS,
                               "hello.max_pause_ms", err))
                return -1;
            return s_check_string (env->hello->store, "hello.store", err)
                || s_check_string (env->hello->ceph_cluster, "hello.ceph_cluster", err);
        case SF_BODY_WELCOME:
            return s_check_range (env->welcome->heartbeat_ms, SF_WIRE_MAX_HEARTBEAT_MS,
                                  "welcome.heartbeat_ms", err);
        case SF_BODY_HEARTBEAT:
            return s_check_range (env->heartbeat->running_jobs, SF_WIRE_MAX_JOBS,
                                  "heartbeat.running_jobs", err)
                || s_check_range (env->heartbeat->scratch_free, SF_WIRE_MAX_SIZE,
                                  "heartbeat.scratch_free", err)
                || s_check_range (env->heartbeat->rbd_snap_ms, SF_WIRE_MAX_MS,
                                  "heartbeat.rbd_snap_ms", err);
        case SF_BODY_INVENTORY:
            return s_check_inventory (env->inventory, err);
        case SF_BODY_JOB_ASSIGN:
            if (s_require (env->job_assign->job_id, "job_assign.job_id", err)
            ||  s_require (env->job_assign->instance_uuid, "job_assign.instance_uuid", err)
            ||  s_require (env->job_assign->strategy, "job_assign.strategy", err))
                return -1;
            if (!sf_naming_id_valid (env->job_assign->catalog_id))
                return sf_err_set (err, SF_EPROTO, "job_assign.catalog_id is not a catalogue "
                                   "id (%d lowercase hex digits)", SF_NAMING_ID_LEN);
            return s_check_range (env->job_assign->scratch_bytes, SF_WIRE_MAX_TOTAL,
                                  "job_assign.scratch_bytes", err)
                || s_check_restore (env->job_assign, err)
                || s_check_verify (env->job_assign, err)
                || s_check_incremental (env->job_assign, err);
        case SF_BODY_JOB_CANCEL:
            return s_require (env->job_cancel->job_id, "job_cancel.job_id", err);
        case SF_BODY_JOB_EVENT:
            if (s_require (env->job_event->job_id, "job_event.job_id", err)
            ||  s_check_string (env->job_event->text, "job_event.text", err))
                return -1;
            if (env->job_event->phase <= 0 || env->job_event->phase > SF_PHASE_LAST)
                return sf_err_set (err, SF_EPROTO, "phase %d out of range",
                                   env->job_event->phase);
            return s_check_range (env->job_event->ms, SF_WIRE_MAX_MS, "job_event.ms", err)
                || s_check_range (env->job_event->bytes, SF_WIRE_MAX_TOTAL,
                                  "job_event.bytes", err)
                || s_check_range (env->job_event->at_ms, SF_WIRE_MAX_TIME_MS,
                                  "job_event.at_ms", err);
        case SF_BODY_JOB_RESULT:
            return s_check_result (env->job_result, err);
        case SF_BODY_ERROR:
            return s_check_string (env->error->text, "error.text", err);
        case SF_BODY_JOB_GRANT:
            return s_require (env->job_grant->job_id, "job_grant.job_id", err)
                || s_check_range (env->job_grant->rate_bps, SF_WIRE_MAX_SIZE,
                                  "job_grant.rate_bps", err);
        case SF_BODY_RATE_APPLIED:
            return s_require (env->rate_applied->job_id, "rate_applied.job_id", err)
                || s_check_range (env->rate_applied->rate_bps, SF_WIRE_MAX_SIZE,
                                  "rate_applied.rate_bps", err);
        case SF_BODY_IMAGE_DELETE:
            if (s_require (env->image_delete->request_id, "image_delete.request_id", err))
                return -1;
            if (!env->image_delete->image)
                return sf_err_set (err, SF_EPROTO, "image_delete has no image");
            if (!sf_naming_id_valid (env->image_delete->catalog_id))
                return sf_err_set (err, SF_EPROTO, "image_delete.catalog_id is not a "
                                   "catalogue id (%d lowercase hex digits)", SF_NAMING_ID_LEN);
            if (s_require (env->image_delete->job_id, "image_delete.job_id", err))
                return -1;
            return s_require (env->image_delete->image->id, "image.id", err)
                || s_require (env->image_delete->image->store, "image.store", err)
                || s_check_image (env->image_delete->image, err);
        case SF_BODY_IMAGE_DELETED:
            if (s_require (env->image_deleted->request_id, "image_deleted.request_id", err)
            ||  (env->image_deleted->image
                 && s_check_image (env->image_deleted->image, err)))
                return -1;
            if (env->image_deleted->error
            &&  s_check_string (env->image_deleted->error->text, "error.text", err))
                return -1;
            return 0;
        case SF_BODY_ACKS:
            if (env->acks->n_acks > SF_WIRE_MAX_ACKS)
                return sf_err_set (err, SF_EPROTO, "acks has more than %d entries",
                                   SF_WIRE_MAX_ACKS);
            for (size_t i = 0; i < env->acks->n_acks; i++) {
                const sf_ack_t *ack = env->acks->acks [i];
                if (s_check_string (ack->job_id, "ack.job_id", err)
                ||  s_check_string (ack->request_id, "ack.request_id", err)
                ||  s_check_range (ack->at_ms, SF_WIRE_MAX_TIME_MS, "ack.at_ms", err))
                    return -1;
                if (!*ack->job_id == !*ack->request_id)
                    return sf_err_set (err, SF_EPROTO, "an ack names a job or a request, "
                                       "one of the two");
                if (*ack->job_id && (ack->phase <= 0 || ack->phase > SF_PHASE_LAST))
                    return sf_err_set (err, SF_EPROTO, "ack phase %d out of range",
                                       ack->phase);
            }
            return 0;
        case SF_BODY_JOB_QUERY:
            return s_require (env->job_query->job_id, "job_query.job_id", err);
        case SF_BODY_JOB_STATUS:
            if (s_require (env->job_status->job_id, "job_status.job_id", err))
                return -1;
            if (env->job_status->state <= 0 || env->job_status->state > SF_JOB_STATE_LAST)
                return sf_err_set (err, SF_EPROTO, "job_status.state %d out of range",
                                   env->job_status->state);
            if (env->job_status->phase < 0 || env->job_status->phase > SF_PHASE_LAST)
                return sf_err_set (err, SF_EPROTO, "job_status.phase %d out of range",
                                   env->job_status->phase);
            return s_check_range (env->job_status->progress, SF_WIRE_MAX_TOTAL,
                                  "job_status.progress", err);
        case SF_BODY_GC_LIST:
            if (s_require (env->gc_list->request_id, "gc_list.request_id", err))
                return -1;
            if (!sf_naming_id_valid (env->gc_list->catalog_id))
                return sf_err_set (err, SF_EPROTO, "gc_list.catalog_id is not a catalogue "
                                   "id (%d lowercase hex digits)", SF_NAMING_ID_LEN);
            return 0;
        case SF_BODY_GC_HOLDINGS:
            return s_require (env->gc_holdings->request_id, "gc_holdings.request_id", err)
                || s_check_string (env->gc_holdings->note, "gc_holdings.note", err)
                || s_check_holdings (env->gc_holdings->holdings,
                                     env->gc_holdings->n_holdings, "gc_holdings.holdings",
                                     err);
        case SF_BODY_GC_REMOVE:
            if (s_require (env->gc_remove->request_id, "gc_remove.request_id", err))
                return -1;
            if (!sf_naming_id_valid (env->gc_remove->catalog_id))
                return sf_err_set (err, SF_EPROTO, "gc_remove.catalog_id is not a "
                                   "catalogue id (%d lowercase hex digits)", SF_NAMING_ID_LEN);
            return s_check_holdings (env->gc_remove->holdings, env->gc_remove->n_holdings,
                                     "gc_remove.holdings", err);
        case SF_BODY_GC_REMOVED:
            return s_require (env->gc_removed->request_id, "gc_removed.request_id", err)
                || s_check_holdings (env->gc_removed->removed, env->gc_removed->n_removed,
                                     "gc_removed.removed", err)
                || s_check_holdings (env->gc_removed->failed, env->gc_removed->n_failed,
                                     "gc_removed.failed", err);
        default:
            return sf_err_set (err, SF_EPROTO, "message has no body");
    }
}

//  --------------------------------------------------------------------------
//  The wire-format walk before unpacking
//
//  protobuf-c allocates an array for every repeated field (and a message
//  for every entry) as large as the frame says, and a slab entry for every
//  field occurrence, before we could look at counts: 4 MiB of empty Disk
//  entries are a million allocations. So the frame is walked first, along
//  the schema: tags, varints and lengths are checked, each message field
//  is entered (only those: nesting can go no deeper than the schema), and
//  each repeated field is counted against its cap. Unknown fields (from a
//  newer peer) are skipped, not entered; a message may hold at most
//  SCAN_MAX_OTHER fields besides its repeated entries.

#define SCAN_MAX_OTHER  64

typedef struct _scan_msg_t scan_msg_t;

typedef struct {
    uint32_t number;            //  Field number
    const char *name;           //  For the error: "instance.disks"
    const scan_msg_t *message;  //  Its message type, NULL for a string
    size_t max;                 //  Repeated: most entries; 0 = singular
    bool no_nul;                //  A string that may hold no NUL byte
} scan_field_t;

struct _scan_msg_t {
    const scan_field_t *fields; //  Fields that are messages or repeated
    size_t n_fields;
};

#define SCAN_MSG(fields) { fields, sizeof (fields) / sizeof (fields [0]) }

static const scan_msg_t s_scan_leaf = { NULL, 0 };
static const scan_field_t s_scan_disk_fields [] = {
    { 7, "disk.backing_chain", NULL, SF_WIRE_MAX_CHAIN, false },
};
static const scan_msg_t s_scan_disk = SCAN_MSG (s_scan_disk_fields);
static const scan_field_t s_scan_instance_fields [] = {
    { 4, "instance.disks", &s_scan_disk, SF_WIRE_MAX_DISKS, false },
    { 6, "instance.tags", &s_scan_leaf, SF_WIRE_MAX_TAGS, false },
};
static const scan_msg_t s_scan_instance = SCAN_MSG (s_scan_instance_fields);
static const scan_field_t s_scan_inventory_fields [] = {
    { 1, "inventory.instances", &s_scan_instance, SF_WIRE_MAX_INSTANCES, false },
};
static const scan_msg_t s_scan_inventory = SCAN_MSG (s_scan_inventory_fields);
static const scan_field_t s_scan_hello_fields [] = {
    { 4, "hello.strategies", NULL, SF_WIRE_MAX_STRATEGIES, false },
    { 5, "hello.running_jobs", NULL, SF_WIRE_MAX_RUNNING, false },
    { 9, "hello.finished_jobs", NULL, SF_WIRE_MAX_RUNNING, false },
};
static const scan_msg_t s_scan_hello = SCAN_MSG (s_scan_hello_fields);
static const scan_field_t s_scan_result_fields [] = {
    { 10, "job_result.images", &s_scan_leaf, SF_WIRE_MAX_IMAGES, false },
    { 11, "job_result.error", &s_scan_leaf, 0, false },
    { 15, "job_result.verify", &s_scan_leaf, 0, false },
    { 16, "job_result.domain_xml", NULL, 0, true },
};
static const scan_msg_t s_scan_result = SCAN_MSG (s_scan_result_fields);
static const scan_field_t s_scan_restore_fields [] = {
    { 1, "restore.image", &s_scan_leaf, 0, false },
    { 7, "restore.domain_xml", NULL, 0, true },
};
static const scan_msg_t s_scan_restore = SCAN_MSG (s_scan_restore_fields);
static const scan_field_t s_scan_verify_fields [] = {
    { 1, "verify.image", &s_scan_leaf, 0, false },
    { 5, "verify.domain_xml", NULL, 0, true },
};
static const scan_msg_t s_scan_verify = SCAN_MSG (s_scan_verify_fields);
static const scan_field_t s_scan_assign_fields [] = {
    { 8, "job_assign.restore", &s_scan_restore, 0, false },
    { 9, "job_assign.verify", &s_scan_verify, 0, false },
};
static const scan_msg_t s_scan_assign = SCAN_MSG (s_scan_assign_fields);
static const scan_field_t s_scan_delete_fields [] = {
    { 2, "image_delete.image", &s_scan_leaf, 0, false },
};
static const scan_msg_t s_scan_delete = SCAN_MSG (s_scan_delete_fields);
static const scan_field_t s_scan_deleted_fields [] = {
    { 2, "image_deleted.image", &s_scan_leaf, 0, false },
    { 3, "image_deleted.error", &s_scan_leaf, 0, false },
};
static const scan_msg_t s_scan_deleted = SCAN_MSG (s_scan_deleted_fields);
static const scan_field_t s_scan_acks_fields [] = {
    { 1, "acks.acks", &s_scan_leaf, SF_WIRE_MAX_ACKS, false },
};
static const scan_msg_t s_scan_acks = SCAN_MSG (s_scan_acks_fields);
static const scan_field_t s_scan_gc_holdings_fields [] = {
    { 2, "gc_holdings.holdings", &s_scan_leaf, SF_WIRE_MAX_HOLDINGS, false },
};
static const scan_msg_t s_scan_gc_holdings = SCAN_MSG (s_scan_gc_holdings_fields);
static const scan_field_t s_scan_gc_remove_fields [] = {
    { 3, "gc_remove.holdings", &s_scan_leaf, SF_WIRE_MAX_HOLDINGS, false },
};
static const scan_msg_t s_scan_gc_remove = SCAN_MSG (s_scan_gc_remove_fields);
static const scan_field_t s_scan_gc_removed_fields [] = {
    { 2, "gc_removed.removed", &s_scan_leaf, SF_WIRE_MAX_HOLDINGS, false },
    { 3, "gc_removed.failed", &s_scan_leaf, SF_WIRE_MAX_HOLDINGS, false },
};
static const scan_msg_t s_scan_gc_removed = SCAN_MSG (s_scan_gc_removed_fields);
static const scan_field_t s_scan_envelope_fields [] = {
    { 10, "hello", &s_scan_hello, 0, false },
    { 11, "welcome", &s_scan_leaf, 0, false },
    { 12, "heartbeat", &s_scan_leaf, 0, false },
    { 13, "inventory", &s_scan_inventory, 0, false },
    { 14, "job_assign", &s_scan_assign, 0, false },
    { 15, "job_cancel", &s_scan_leaf, 0, false },
    { 16, "job_event", &s_scan_leaf, 0, false },
    { 17, "job_result", &s_scan_result, 0, false },
    { 18, "error", &s_scan_leaf, 0, false },
    { 19, "job_grant", &s_scan_leaf, 0, false },
    { 20, "image_delete", &s_scan_delete, 0, false },
    { 21, "image_deleted", &s_scan_deleted, 0, false },
    { 22, "rate_applied", &s_scan_leaf, 0, false },
    { 23, "acks", &s_scan_acks, 0, false },
    { 24, "job_query", &s_scan_leaf, 0, false },
    { 25, "job_status", &s_scan_leaf, 0, false },
    { 26, "gc_list", &s_scan_leaf, 0, false },
    { 27, "gc_holdings", &s_scan_gc_holdings, 0, false },
    { 28, "gc_remove", &s_scan_gc_remove, 0, false },
    { 29, "gc_removed", &s_scan_gc_removed, 0, false },
};
static const scan_msg_t s_scan_envelope = SCAN_MSG (s_scan_envelope_fields);

//  Read a varint at *at (before end). Returns 0 or -1 if it is truncated
//  or longer than 10 bytes.

static int
s_scan_varint (const byte **at, const byte *end, uint64_t *value)
{
    *value = 0;
    for (int shift = 0; shift < 70 && *at < end; shift += 7) {
        byte b = *(*at)++;
        *value |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

static int
s_scan (const byte *data, size_t size, const scan_msg_t *msg, const char *name,
        sf_err_t *err)
{
    size_t counts [32] = { 0 };
    size_t other = 0;
    assert (msg->n_fields <= sizeof (counts) / sizeof (counts [0]));
    const byte *at = data, *end = data + size;
    while (at < end) {
        uint64_t tag, length;
        if (s_scan_varint (&at, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
            return sf_err_set (err, SF_EPROTO, "malformed field tag in %s", name);
        uint32_t number = (uint32_t) (tag >> 3);
        int type = (int) (tag & 7);
        const scan_field_t *field = NULL;
        size_t index = 0;
        for (; index < msg->n_fields; index++)
            if (msg->fields [index].number == number) {
                field = &msg->fields [index];
                break;
            }
        if (field && type != 2)
            return sf_err_set (err, SF_EPROTO, "field '%s' has wire type %d, not 2",
                               field->name, type);
        if (field && field->max) {
            if (++counts [index] > field->max)
                return sf_err_set (err, SF_EPROTO, "field '%s' has more than %zu entries",
                                   field->name, field->max);
        }
        else
        if (++other > SCAN_MAX_OTHER)
            return sf_err_set (err, SF_EPROTO, "%s has more than %d fields besides its "
                               "repeated ones", name, SCAN_MAX_OTHER);
        switch (type) {
            case 0:
                if (s_scan_varint (&at, end, &length))
                    return sf_err_set (err, SF_EPROTO, "malformed varint in %s", name);
                break;
            case 1:
            case 5:
                if ((size_t) (end - at) < (type == 1? 8u: 4u))
                    return sf_err_set (err, SF_EPROTO, "truncated field in %s", name);
                at += type == 1? 8: 4;
                break;
            case 2:
                if (s_scan_varint (&at, end, &length) || length > (uint64_t) (end - at))
                    return sf_err_set (err, SF_EPROTO, "truncated field in %s", name);
                if (field && field->message
                &&  s_scan (at, (size_t) length, field->message, field->name, err))
                    return -1;
                if (field && field->no_nul && memchr (at, 0, (size_t) length))
                    return sf_err_set (err, SF_EPROTO, "field '%s' holds a NUL byte",
                                       field->name);
                at += length;
                break;
            default:                //  Groups (3, 4) are not in the schema
                return sf_err_set (err, SF_EPROTO, "wire type %d in %s", type, name);
        }
    }
    return 0;
}

int
sf_wire_scan (const void *data, size_t size, sf_err_t *err)
{
    assert (data || size == 0);
    return s_scan ((const byte *) data, size, &s_scan_envelope, "envelope", err);
}

zframe_t *
sf_wire_encode (sf_envelope_t *env, sf_err_t *err)
{
    assert (env);
    env->version = SF_WIRE_VERSION;
    size_t size = sf__v1__envelope__get_packed_size (env);
    if (size > SF_WIRE_MAX_BYTES) {
        sf_err_set (err, SF_EPROTO, "message of %zu bytes exceeds the %d-byte cap",
                    size, SF_WIRE_MAX_BYTES);
        return NULL;
    }
    zframe_t *frame = zframe_new (NULL, size);
    sf__v1__envelope__pack (env, zframe_data (frame));
    return frame;
}

sf_envelope_t *
sf_wire_decode (zframe_t *frame, sf_err_t *err)
{
    if (!frame) {
        sf_err_set (err, SF_EPROTO, "empty message");
        return NULL;
    }
    size_t size = zframe_size (frame);
    if (size > SF_WIRE_MAX_BYTES) {
        sf_err_set (err, SF_EPROTO, "message of %zu bytes exceeds the %d-byte cap",
                    size, SF_WIRE_MAX_BYTES);
        return NULL;
    }
    if (sf_wire_scan (zframe_data (frame), size, err))
        return NULL;
    sf_envelope_t *env = sf__v1__envelope__unpack (NULL, size, zframe_data (frame));
    if (!env) {
        sf_err_set (err, SF_EPROTO, "undecodable message of %zu bytes", size);
        return NULL;
    }
    if (s_validate (env, err)) {
        sf_wire_free (&env);
        return NULL;
    }
    return env;
}

void
sf_wire_free (sf_envelope_t **env_p)
{
    assert (env_p);
    if (*env_p) {
        sf__v1__envelope__free_unpacked (*env_p, NULL);
        *env_p = NULL;
    }
}

sf_envelope_t
sf_wire_envelope (int body_case, void *body)
{
    sf_envelope_t env = SF_ENVELOPE_INIT;
    env.body_case = (Sf__V1__Envelope__BodyCase) body_case;
    switch (body_case) {
        case SF_BODY_HELLO:         env.hello = body; break;
        case SF_BODY_WELCOME:       env.welcome = body; break;
        case SF_BODY_HEARTBEAT:     env.heartbeat = body; break;
        case SF_BODY_INVENTORY:     env.inventory = body; break;
        case SF_BODY_JOB_ASSIGN:    env.job_assign = body; break;
        case SF_BODY_JOB_CANCEL:    env.job_cancel = body; break;
        case SF_BODY_JOB_EVENT:     env.job_event = body; break;
        case SF_BODY_JOB_RESULT:    env.job_result = body; break;
        case SF_BODY_ERROR:         env.error = body; break;
        case SF_BODY_JOB_GRANT:     env.job_grant = body; break;
        case SF_BODY_IMAGE_DELETE:  env.image_delete = body; break;
        case SF_BODY_IMAGE_DELETED: env.image_deleted = body; break;
        case SF_BODY_RATE_APPLIED:  env.rate_applied = body; break;
        case SF_BODY_ACKS:          env.acks = body; break;
        case SF_BODY_JOB_QUERY:     env.job_query = body; break;
        case SF_BODY_JOB_STATUS:    env.job_status = body; break;
        case SF_BODY_GC_LIST:       env.gc_list = body; break;
        case SF_BODY_GC_HOLDINGS:   env.gc_holdings = body; break;
        case SF_BODY_GC_REMOVE:     env.gc_remove = body; break;
        case SF_BODY_GC_REMOVED:    env.gc_removed = body; break;
        default:                    assert (!"sf_wire_envelope: unknown body");
    }
    return env;
}

sf_job_event_t
sf_wire_job_event (const char *job_id, uint32_t attempt, int phase, uint64_t ms,
                   uint64_t bytes)
{
    sf_job_event_t event = SF_JOB_EVENT_INIT;
    event.job_id = (char *) job_id;
    event.attempt = attempt;
    event.phase = (Sf__V1__Phase) phase;
    event.ms = ms;
    event.bytes = bytes;
    event.at_ms = (uint64_t) sf_time_now_ms ();
    return event;
}

sf_ack_t
sf_wire_ack (const char *job_id, uint32_t attempt, int phase, uint64_t at_ms,
             const char *request_id)
{
    sf_ack_t ack = SF_ACK_INIT;
    if (job_id) {
        ack.job_id = (char *) job_id;
        ack.attempt = attempt;
        ack.phase = (Sf__V1__Phase) phase;
        ack.at_ms = at_ms;
    }
    else
        ack.request_id = (char *) (request_id? request_id: "");
    return ack;
}

bool
sf_wire_ack_of (const sf_envelope_t *env, sf_ack_t *ack)
{
    assert (env && ack);
    switch (env->body_case) {
        case SF_BODY_JOB_EVENT:
            *ack = sf_wire_ack (env->job_event->job_id, env->job_event->attempt,
                                env->job_event->phase, env->job_event->at_ms, NULL);
            return true;
        case SF_BODY_JOB_RESULT:
            *ack = sf_wire_ack (env->job_result->job_id, env->job_result->attempt,
                                SF_PHASE_DONE, 0, NULL);
            return true;
        case SF_BODY_IMAGE_DELETED:
            *ack = sf_wire_ack (NULL, 0, 0, 0, env->image_deleted->request_id);
            return true;
        default:
            return false;
    }
}

bool
sf_wire_ack_matches (const sf_ack_t *ack, const sf_envelope_t *env)
{
    assert (ack && env);
    sf_ack_t own;
    if (!sf_wire_ack_of (env, &own))
        return false;
    const char *job = ack->job_id? ack->job_id: "";
    const char *request = ack->request_id? ack->request_id: "";
    if (*own.request_id || *request)
        return !*job && streq (request, own.request_id? own.request_id: "");
    return streq (job, own.job_id) && ack->attempt == own.attempt
        && ack->phase == own.phase && ack->at_ms == own.at_ms;
}

sf_rate_applied_t
sf_wire_rate_applied (const sf_job_grant_t *grant)
{
    sf_rate_applied_t applied = SF_RATE_APPLIED_INIT;
    applied.job_id = grant->job_id;
    applied.attempt = grant->attempt;
    applied.rate_bps = grant->rate_bps;
    return applied;
}

int
sf_wire_send (void *sock, zframe_t *routing_id, sf_envelope_t *env, sf_err_t *err)
{
    zframe_t *frame = sf_wire_encode (env, err);
    if (!frame)
        return -1;
    zmsg_t *msg = zmsg_new ();
    if (routing_id)
        zmsg_append (msg, &(zframe_t *) { zframe_dup (routing_id) });
    zmsg_append (msg, &frame);
    if (zmsg_send (&msg, sock)) {
        int errnum = zmq_errno ();
        zmsg_destroy (&msg);
        //  A mandatory ROUTER whose peer's connection is gone
        return sf_err_set (err, errnum == EHOSTUNREACH? SF_ENODE: SF_EIO,
                           "cannot send message: %s", zmq_strerror (errnum));
    }
    return 0;
}

sf_envelope_t *
sf_wire_recv (void *sock, zframe_t **routing_id_p, sf_err_t *err)
{
    return sf_wire_recv_peer (sock, routing_id_p, NULL, err);
}

sf_envelope_t *
sf_wire_recv_peer (void *sock, zframe_t **routing_id_p, char **peer_p, sf_err_t *err)
{
    if (peer_p)
        *peer_p = NULL;
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg) {
        sf_err_set (err, SF_EIO, "receive interrupted");
        return NULL;
    }
    if (routing_id_p)
        *routing_id_p = zmsg_pop (msg);
    sf_envelope_t *env = NULL;
    if (zmsg_size (msg) != 1)
        sf_err_set (err, SF_EPROTO, "expected 1 body frame, got %zu", zmsg_size (msg));
    else {
        zframe_t *frame = zmsg_first (msg);
        env = sf_wire_decode (frame, err);
    }
    const char *peer = sf_cert_peer (zmsg_last (msg));
    if (peer_p && peer)
        *peer_p = strdup (peer);
    zmsg_destroy (&msg);
    return env;
}

const char *
sf_wire_body_name (int body_case)
{
    switch (body_case) {
        case SF_BODY_HELLO:         return "hello";
        case SF_BODY_WELCOME:       return "welcome";
        case SF_BODY_HEARTBEAT:     return "heartbeat";
        case SF_BODY_INVENTORY:     return "inventory";
        case SF_BODY_JOB_ASSIGN:    return "job_assign";
        case SF_BODY_JOB_CANCEL:    return "job_cancel";
        case SF_BODY_JOB_EVENT:     return "job_event";
        case SF_BODY_JOB_RESULT:    return "job_result";
        case SF_BODY_ERROR:         return "error";
        case SF_BODY_JOB_GRANT:     return "job_grant";
        case SF_BODY_IMAGE_DELETE:  return "image_delete";
        case SF_BODY_IMAGE_DELETED: return "image_deleted";
        case SF_BODY_RATE_APPLIED:  return "rate_applied";
        case SF_BODY_ACKS:          return "acks";
        case SF_BODY_JOB_QUERY:     return "job_query";
        case SF_BODY_JOB_STATUS:    return "job_status";
        case SF_BODY_GC_LIST:       return "gc_list";
        case SF_BODY_GC_HOLDINGS:   return "gc_holdings";
        case SF_BODY_GC_REMOVE:     return "gc_remove";
        case SF_BODY_GC_REMOVED:    return "gc_removed";
        default:                    return "none";
    }
}

const char *
sf_wire_holding_kind_name (int kind)
{
    switch (kind) {
        case SF_HOLDING_IMAGE:      return "image";
        case SF_HOLDING_TEMP:       return "temp";
        case SF_HOLDING_SCRATCH:    return "scratch";
        case SF_HOLDING_SNAP:       return "snapshot";
        case SF_HOLDING_CLONE:      return "clone";
        default:                    return "unknown";
    }
}

const char *
sf_wire_phase_name (int phase)
{
    static const char *names [] = {
        "unspecified", "queued", "paused", "resumed", "converted",
        "uploaded", "done", "failed", "upload_wait"
    };
    if (phase < 0 || phase > SF_PHASE_LAST)
        return "unknown";
    return names [phase];
}
