/*  =========================================================================
    sf_imgstore_glance_selftest - the glance driver's self test against an
    in-process fake Glance (libmicrohttpd): the error mapping and the
    checks of what Glance reports (status, size, sha512, virtual_size).
    The real Glance is tests/t0260-glance.sh's.
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_imgstore_driver.h"

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <time.h>

//  What the fake does and saw (guarded by lock: MHD answers on its thread)
typedef struct {
    pthread_mutex_t lock;
    int create_status;          //  POST /v2/images answers this (201)
    int fail_first;             //  ... after this many 503s
    int put_status;             //  PUT .../file (204)
    int lie;                    //  GET: 0 truth, 1 hash, 2 size, 3 queued, 4 no virtual_size
    json_t *images;             //  id -> image
    int deleted;                //  DELETEs answered 204
    int requests;
    int next_id;
    int port;
    int tokens;                 //  tokens Keystone gave (POST /v3/auth/tokens)
    bool keystone;              //  Glance wants X-Auth-Token "tok-<tokens>"
    int expire_once;            //  Glance refuses this many valid tokens (401)
    char last_secret [64];      //  the application credential secret sent
} fake_t;

typedef struct {
    char *body;                 //  POST body
    size_t size;
    EVP_MD_CTX *md;             //  PUT: the bytes' SHA-512
    uint64_t bytes;
} conn_t;

static enum MHD_Result
s_answer (struct MHD_Connection *connection, int status, json_t *json)
{
    char *text = json ? json_dumps (json, JSON_COMPACT) : strdup ("");
    json_decref (json);
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, "X-Openstack-Request-Id", "req-fake-1");
    MHD_add_response_header (response, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response (connection, (unsigned int) status, response);
    MHD_destroy_response (response);
    return rc;
}

static json_t *
s_error (int status, const char *message)
{
    return json_pack ("{s:s, s:i}", "message", message, "code", status);
}

static enum MHD_Result
s_handler (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size,
           void **con_cls)
{
    (void) version;
    fake_t *fake = (fake_t *) cls;
    conn_t *conn = (conn_t *) *con_cls;
    if (!conn) {
        conn = (conn_t *) zmalloc (sizeof (conn_t));
        *con_cls = conn;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (streq (method, "PUT")) {
            if (!conn->md) {
                conn->md = EVP_MD_CTX_new ();
                EVP_DigestInit_ex (conn->md, EVP_sha512 (), NULL);
            }
            EVP_DigestUpdate (conn->md, upload_data, *upload_data_size);
            conn->bytes += *upload_data_size;
        }
        else {
            conn->body = (char *) realloc (conn->body, conn->size + *upload_data_size + 1);
            memcpy (conn->body + conn->size, upload_data, *upload_data_size);
            conn->size += *upload_data_size;
            conn->body [conn->size] = 0;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock (&fake->lock);
    fake->requests++;
    enum MHD_Result rc;
    if (streq (method, "POST") && streq (url, "/v3/auth/tokens")) {
        //  Keystone: a token for the credential "good" (valid an hour)
        json_t *auth = json_loads (conn->body ? conn->body : "", 0, NULL);
        const char *secret = json_string_value (json_object_get (json_object_get (json_object_get (
            json_object_get (auth, "auth"), "identity"), "application_credential"), "secret"));
        snprintf (fake->last_secret, sizeof (fake->last_secret), "%s", secret ? secret : "");
        json_decref (auth);
        if (!streq (fake->last_secret, "good")) {
            pthread_mutex_unlock (&fake->lock);
            return s_answer (connection, 401, json_pack ("{s:{s:s}}", "error", "message",
                                                         "The request you have made requires "
                                                         "authentication."));
        }
        char token [32], glance [64], expires [32];
        snprintf (token, sizeof (token), "tok-%d", ++fake->tokens);
        snprintf (glance, sizeof (glance), "http://127.0.0.1:%d/", fake->port);
        time_t later = time (NULL) + 3600;
        strftime (expires, sizeof (expires), "%Y-%m-%dT%H:%M:%S.000000Z", gmtime (&later));
        json_t *body = json_pack ("{s:{s:s, s:[{s:s, s:[{s:s, s:s}]}]}}", "token", "expires_at",
                                  expires, "catalog", "type", "image", "endpoints",
                                  "interface", "public", "url", glance);
        char *text = json_dumps (body, JSON_COMPACT);
        json_decref (body);
        struct MHD_Response *response = MHD_create_response_from_buffer (
            strlen (text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header (response, "X-Subject-Token", token);
        rc = MHD_queue_response (connection, 201, response);
        MHD_destroy_response (response);
        pthread_mutex_unlock (&fake->lock);
        return rc;
    }
    if (fake->keystone) {
        const char *given = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                         "X-Auth-Token");
        char want [32];
        snprintf (want, sizeof (want), "tok-%d", fake->tokens);
        if (!given || !streq (given, want) || fake->expire_once > 0) {
            if (given && streq (given, want))
                fake->expire_once--;
            pthread_mutex_unlock (&fake->lock);
            return s_answer (connection, 401, s_error (401, "token refused"));
        }
    }
    char id [64] = "";
    bool file = false;
    if (strncmp (url, "/v2/images/", 11) == 0) {
        snprintf (id, sizeof (id), "%.*s", (int) strcspn (url + 11, "/"), url + 11);
        file = strstr (url + 11, "/file") != NULL;
    }
    json_t *image = *id ? json_object_get (fake->images, id) : NULL;
    if (streq (method, "POST") && streq (url, "/v2/images")) {
        if (fake->fail_first > 0) {
            fake->fail_first--;
            rc = s_answer (connection, 503, s_error (503, "busy"));
        }
        else
        if (fake->create_status != 201)
            rc = s_answer (connection, fake->create_status, s_error (fake->create_status,
                           "refused by the fake"));
        else {
            json_t *props = json_loads (conn->body ? conn->body : "", 0, NULL);
            snprintf (id, sizeof (id), "00000000-0000-4000-8000-%012d", ++fake->next_id);
            json_object_set_new (props, "id", json_string (id));
            json_object_set_new (props, "status", json_string ("queued"));
            json_object_set (fake->images, id, props);
            rc = s_answer (connection, 201, props);
        }
    }
    else
    if (streq (method, "PUT") && file && image) {
        if (fake->put_status != 204)
            rc = s_answer (connection, fake->put_status, s_error (fake->put_status, "no"));
        else {
            unsigned char digest [64];
            unsigned int len = 0;
            char hex [129] = "";
            if (!conn->md) {
                conn->md = EVP_MD_CTX_new ();
                EVP_DigestInit_ex (conn->md, EVP_sha512 (), NULL);
            }
            EVP_DigestFinal_ex (conn->md, digest, &len);
            for (unsigned int i = 0; i < len; i++)
                snprintf (hex + 2 * i, 3, "%02x", digest [i]);
            if (fake->lie == 1)
                hex [0] = hex [0] == '0' ? '1' : '0';
            json_object_set_new (image, "status", json_string (fake->lie == 3 ? "queued"
                                                                : "active"));
            json_object_set_new (image, "size", json_integer ((json_int_t) conn->bytes
                                                              + (fake->lie == 2)));
            json_object_set_new (image, "os_hash_algo", json_string ("sha512"));
            json_object_set_new (image, "os_hash_value", json_string (hex));
            json_object_set_new (image, "virtual_size", fake->lie == 4 ? json_null ()
                                 : json_integer (1 << 20));
            rc = s_answer (connection, 204, NULL);
        }
    }
    else
    if (streq (method, "GET") && image && !file)
        rc = s_answer (connection, 200, json_incref (image));
    else
    if (streq (method, "GET") && strncmp (url, "/v2/images", 10) == 0 && !*id) {
        json_t *list = json_array ();
        const char *key;
        json_t *value;
        json_object_foreach (fake->images, key, value)
            json_array_append (list, value);
        rc = s_answer (connection, 200, json_pack ("{s:o}", "images", list));
    }
    else
    if (streq (method, "DELETE") && image) {
        json_object_del (fake->images, id);
        fake->deleted++;
        rc = s_answer (connection, 204, NULL);
    }
    else
        rc = s_answer (connection, 404, s_error (404, "no such image"));
    pthread_mutex_unlock (&fake->lock);
    return rc;
}

static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void) cls; (void) connection; (void) toe;
    conn_t *conn = (conn_t *) *con_cls;
    if (conn) {
        EVP_MD_CTX_free (conn->md);
        free (conn->body);
        free (conn);
        *con_cls = NULL;
    }
}

static void
s_fake_set (fake_t *fake, int create, int fail_first, int put, int lie)
{
    pthread_mutex_lock (&fake->lock);
    fake->create_status = create;
    fake->fail_first = fail_first;
    fake->put_status = put;
    fake->lie = lie;
    pthread_mutex_unlock (&fake->lock);
}

static size_t
s_fake_images (fake_t *fake)
{
    pthread_mutex_lock (&fake->lock);
    size_t n = json_object_size (fake->images);
    pthread_mutex_unlock (&fake->lock);
    return n;
}

#define S_CAT "0123456789abcdef"

//  put must fail with text in its error, code code, and leave no image
static void
s_expect_fail (sf_imgstore_t *store, fake_t *fake, const char *src, const char *text, int code)
{
    sf_err_t err = SF_ERR_INIT;
    sf_image_meta_t meta = { "6695eb01-f6a4-8304-79aa-97f2502e193f", "web1", "J9", 1,
                             "file-cold", "paused", "vda", S_CAT };
    sf_image_rec_t rec;
    assert (sf_imgstore_put (store, &meta, src, NULL, NULL, &rec, &err) == -1);
    if (!strstr (err.text, text) || err.code != code)
        printf ("\nunexpected error %d: %s\n", err.code, err.text);
    assert (strstr (err.text, text) && err.code == code);
    assert (s_fake_images (fake) == 0);
}

void
sf_imgstore_glance_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_imgstore_glance: ");
    //  @selftest
    fake_t fake;
    memset (&fake, 0, sizeof (fake));
    pthread_mutex_init (&fake.lock, NULL);
    fake.images = json_object ();
    s_fake_set (&fake, 201, 0, 204, 0);
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_handler, &fake,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL,
        MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
    assert (daemon);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    assert (info && info->port);
    char url [64];
    snprintf (url, sizeof (url), "http://127.0.0.1:%u/", (unsigned) info->port);
    fake.port = (int) info->port;

    char dir [] = "/tmp/sf-glance-test-XXXXXX";
    assert (mkdtemp (dir));
    char *src = zsys_sprintf ("%s/src.qcow2", dir);
    char *cmd = zsys_sprintf ("head -c 9437201 /dev/urandom > %s", src);
    assert (system (cmd) == 0);
    zstr_free (&cmd);

    //  Bad settings: no URL without Keystone; a secret others can read
    sf_err_t err = SF_ERR_INIT;
    sf_imgstore_cfg_t bad = { .driver = "glance", .auth = "none" };
    assert (sf_imgstore_new (&bad, &err) == NULL && err.code == SF_EINVAL);
    assert (strstr (err.text, "needs glance_url"));
    char *secret = zsys_sprintf ("%s/secret", dir);
    FILE *file = fopen (secret, "w");
    assert (file && fputs ("s3cret\n", file) >= 0 && fclose (file) == 0);
    assert (chmod (secret, 0640) == 0);
    sf_imgstore_cfg_t open_secret = { .driver = "glance", .auth = "keystone",
                                      .auth_url = url, .app_cred_id = "abc",
                                      .secret_file = secret };
    assert (sf_imgstore_new (&open_secret, &err) == NULL && err.code == SF_EINVAL);
    assert (strstr (err.text, "group and others cannot read (mode 0640"));
    sf_imgstore_cfg_t odd = { .driver = "glance", .auth = "ldap", .glance_url = url };
    assert (sf_imgstore_new (&odd, &err) == NULL && strstr (err.text, "none or keystone"));

    sf_imgstore_cfg_t cfg = { .driver = "glance", .auth = "none", .glance_url = url };
    sf_imgstore_t *store = sf_imgstore_new (&cfg, &err);
    assert (store && streq (sf_imgstore_driver (store), "glance"));
    assert (sf_imgstore_check (store, &err) == 0);

    //  Stored: the record, the properties, the bytes' hash checked
    sf_image_meta_t meta = { "6695eb01-f6a4-8304-79aa-97f2502e193f", "web1", "J42", 3,
                             "file-cold", "paused", "vda", S_CAT };
    sf_image_rec_t rec;
    assert (sf_imgstore_put (store, &meta, src, NULL, NULL, &rec, &err) == 0);
    assert (streq (rec.store, "glance") && strlen (rec.id) == 36 && rec.size == 9437201);
    assert (strstr (rec.path, rec.id) && strncmp (rec.path, url, strlen (url) - 1) == 0);
    pthread_mutex_lock (&fake.lock);
    json_t *image = json_object_get (fake.images, rec.id);
    assert (image);
    char *props = json_dumps (image, JSON_SORT_KEYS | JSON_COMPACT);
    pthread_mutex_unlock (&fake.lock);
    const char *want [] = { "\"container_format\":\"bare\"", "\"disk_format\":\"qcow2\"",
                            "\"image_type\":\"snapshot\"", "\"visibility\":\"private\"",
                            "\"instance_uuid\":\"6695eb01-f6a4-8304-79aa-97f2502e193f\"",
                            "\"snapfleet_job_id\":\"J42\"", ("\"snapfleet_catalog_id\":\"" S_CAT),
                            "\"snapfleet_strategy\":\"file-cold\"", "\"snapfleet_attempt\":\"3\"",
                            "\"snapfleet_consistency\":\"paused\"", "\"status\":\"active\"" };
    for (size_t i = 0; i < sizeof (want) / sizeof (want [0]); i++) {
        if (!strstr (props, want [i]))
            printf ("\nmissing %s in %s\n", want [i], props);
        assert (strstr (props, want [i]));
    }
    free (props);
    //  Listed; removed only for its job and catalogue
    zlistx_t *ids = sf_imgstore_list (store, &err);
    assert (ids && zlistx_size (ids) == 1 && streq ((char *) zlistx_first (ids), rec.id));
    zlistx_destroy (&ids);
    assert (sf_imgstore_remove (store, rec.id, S_CAT, "J41", &err) == -1);
    assert (err.code == SF_EINVAL && strstr (err.text, "not deleted (its properties say job 'J42'"));
    assert (sf_imgstore_remove (store, rec.id, "fedcba9876543210", "J42", &err) == -1);
    assert (sf_imgstore_remove (store, "../etc", S_CAT, "J42", &err) == -1);
    assert (s_fake_images (&fake) == 1);
    assert (sf_imgstore_remove (store, rec.id, S_CAT, "J42", &err) == 0);
    assert (s_fake_images (&fake) == 0);
    assert (sf_imgstore_remove (store, rec.id, S_CAT, "J42", &err) == 0);     //  gone: done
    sf_image_rec_release (&rec);

    //  What Glance reports must be what was sent, else the image goes
    s_fake_set (&fake, 201, 0, 204, 1);
    s_expect_fail (store, &fake, src, "is not that of the bytes sent", SF_ESTORE);
    s_fake_set (&fake, 201, 0, 204, 2);
    s_expect_fail (store, &fake, src, "has 9437202 bytes, 9437201 were sent", SF_ESTORE);
    s_fake_set (&fake, 201, 0, 204, 3);
    s_expect_fail (store, &fake, src, "is 'queued' after its upload", SF_ESTORE);
    s_fake_set (&fake, 201, 0, 204, 4);
    s_expect_fail (store, &fake, src, "no virtual_size", SF_ESTORE);
    //  Glance's refusals, with its request id
    s_fake_set (&fake, 201, 0, 413, 0);
    s_expect_fail (store, &fake, src, "413 image too large for Glance (no) req-fake-1",
                   SF_EINVAL);
    s_fake_set (&fake, 201, 0, 415, 0);
    s_expect_fail (store, &fake, src, "415 content type refused", SF_EINVAL);
    s_fake_set (&fake, 401, 0, 204, 0);
    s_expect_fail (store, &fake, src, "creating the image: 401 credentials refused", SF_EINVAL);
    s_fake_set (&fake, 403, 0, 204, 0);
    s_expect_fail (store, &fake, src, "403 forbidden", SF_EINVAL);
    s_fake_set (&fake, 409, 0, 204, 0);
    s_expect_fail (store, &fake, src, "409 conflict", SF_ESTATE);
    s_fake_set (&fake, 201, 0, 410, 0);
    s_expect_fail (store, &fake, src, "410 image deleted meanwhile", SF_ESTORE);
    //  5xx: retried (twice here, then it works); four times: a retryable error
    s_fake_set (&fake, 201, 2, 204, 0);
    assert (sf_imgstore_put (store, &meta, src, NULL, NULL, &rec, &err) == 0);
    assert (sf_imgstore_remove (store, rec.id, S_CAT, "J42", &err) == 0);
    sf_image_rec_release (&rec);
    s_fake_set (&fake, 201, 4, 204, 0);
    s_expect_fail (store, &fake, src, "503 server error (busy) req-fake-1", SF_ESTORE);
    sf_imgstore_destroy (&store);

    //  Keystone: the endpoint from the catalogue, one token for many
    //  calls, a new one once Glance refuses it; a bad secret is a clear error
    pthread_mutex_lock (&fake.lock);
    fake.keystone = true;
    pthread_mutex_unlock (&fake.lock);
    assert (chmod (secret, 0600) == 0);
    file = fopen (secret, "w");
    assert (file && fputs ("good\n", file) >= 0 && fclose (file) == 0);
    sf_imgstore_cfg_t ks = { .driver = "glance", .auth = "keystone", .auth_url = url,
                             .app_cred_id = "abc", .secret_file = secret };
    store = sf_imgstore_new (&ks, &err);
    assert (store);
    s_fake_set (&fake, 201, 0, 204, 0);
    assert (sf_imgstore_check (store, &err) == 0);
    assert (sf_imgstore_put (store, &meta, src, NULL, NULL, &rec, &err) == 0);
    assert (streq (fake.last_secret, "good") && fake.tokens == 1);
    assert (sf_imgstore_remove (store, rec.id, S_CAT, "J42", &err) == 0);
    sf_image_rec_release (&rec);
    pthread_mutex_lock (&fake.lock);
    fake.expire_once = 1;
    pthread_mutex_unlock (&fake.lock);
    assert (sf_imgstore_check (store, &err) == 0);
    assert (fake.tokens == 2);
    sf_imgstore_destroy (&store);
    file = fopen (secret, "w");
    assert (file && fputs ("bad\n", file) >= 0 && fclose (file) == 0);
    store = sf_imgstore_new (&ks, &err);
    assert (store);
    assert (sf_imgstore_check (store, &err) == -1 && err.code == SF_EINVAL);
    assert (strstr (err.text, "refused the application credential: 401 (The request you "
                    "have made requires authentication.)"));
    sf_imgstore_destroy (&store);

    //  Nobody there: a connection error, retried, then a retryable error
    MHD_stop_daemon (daemon);
    store = sf_imgstore_new (&cfg, &err);
    assert (store);
    assert (sf_imgstore_check (store, &err) == -1 && err.code == SF_ESTORE);
    assert (strstr (err.text, "Glance: listing images: no answer from"));
    sf_imgstore_destroy (&store);

    json_decref (fake.images);
    pthread_mutex_destroy (&fake.lock);
    cmd = zsys_sprintf ("rm -rf %s", dir);
    assert (system (cmd) == 0);
    zstr_free (&cmd);
    zstr_free (&secret);
    zstr_free (&src);
    //  @end
    printf ("OK\n");
}
