/*  =========================================================================
    sf_upload_bench - one upload into a "dir" image store through the
    worker's own code (sf_imgstore_put: read, SHA-256, write, fsync,
    publish), timed; for bench/upload-bench.sh

    sf_upload_bench [--copy] SRC STORE_DIR
    sf_upload_bench --glance SRC GLANCE_URL
    Prints one line on stdout: "<ms> <bytes> <sha256> <id>" (ms from the
    call to the return of sf_imgstore_put, the store's fsyncs included).
    SRC on the store's file system is adopted (hard link, hash in place,
    fsync), as a job's scratch image is when no rate is set; --copy copies
    it (read, hash, write, fsync) as a job with a rate does: a bucket at
    1 PB/s, which never waits. --glance: into a "glance" store at
    GLANCE_URL without auth (bench/glance-bench.sh), SRC a qcow2; the id
    printed is Glance's. Exits 1 with the error on stderr.
    =========================================================================
*/
#include "sf_worker_classes.h"

int
main (int argc, char *argv [])
{
    bool copy = argc > 1 && streq (argv [1], "--copy");
    bool glance = argc > 1 && streq (argv [1], "--glance");
    if (copy || glance) {
        argc--;
        argv++;
    }
    if (argc != 3) {
        fprintf (stderr, "usage: sf_upload_bench [--copy] SRC STORE_DIR\n"
                         "       sf_upload_bench --glance SRC GLANCE_URL\n");
        return 2;
    }
    zsys_init ();
    sf_err_t err = SF_ERR_INIT;
    sf_imgstore_cfg_t cfg = { .driver = "dir", .path = argv [2] };
    if (glance)
        cfg = (sf_imgstore_cfg_t) { .driver = "glance", .auth = "none", .glance_url = argv [2],
                                    .path = "/nonexistent" };
    sf_imgstore_t *store = sf_imgstore_new (&cfg, &err);
    if (!store || sf_imgstore_check (store, &err)) {
        fprintf (stderr, "sf_upload_bench: %s\n", err.text);
        sf_imgstore_destroy (&store);
        return 1;
    }
    sf_bucket_t *bucket = NULL;
    if (copy)
        bucket = sf_bucket_new (1000ULL * 1000 * 1000 * 1000 * 1000, SF_IMGSTORE_CHUNK);
    sf_image_meta_t meta = { "00000000-0000-0000-0000-000000000000", "bench", "B1", 1,
                             "file-cold", "paused", "vda", "0123456789abcdef" };
    sf_image_rec_t rec;
    int64_t start = zclock_usecs ();
    int rc = sf_imgstore_put (store, &meta, argv [1], NULL, bucket, &rec, &err);
    int64_t took = zclock_usecs () - start;
    if (rc == 0) {
        printf ("%.1f %" PRIu64 " %s %s\n", (double) took / 1000.0, rec.size, rec.sha256,
                rec.id);
        sf_image_rec_release (&rec);
    }
    else
        fprintf (stderr, "sf_upload_bench: %s\n", err.text);
    sf_bucket_destroy (&bucket);
    sf_imgstore_destroy (&store);
    return rc ? 1 : 0;
}
