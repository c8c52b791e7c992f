/*  =========================================================================
    sf_imgstore_glance - the "glance" image store: OpenStack Glance v2

    An image is a Glance image made for it (POST /v2/images: qcow2, bare,
    private, its properties as strings: instance_uuid, image_type=snapshot
    and snapfleet_* for the job, catalogue, strategy, consistency, disk).
    Its bytes are streamed with PUT .../file (octet-stream, chunked) by a
    curl thread of the upload that pulls them from a bounded ring the
    driver's write() fills: never the whole image in memory. The curl
    thread hashes what it sends (SHA-512, libcrypto's EVP) and counts it.
    On commit the image must be active, with Glance's size and
    os_hash_value (sha512) equal to what was sent, and a virtual_size (a
    qcow2 Glance could read). Any failure deletes the image (it would stay
    queued or saving); an image is deleted for retention only if its
    snapfleet_job_id and snapfleet_catalog_id properties say it is the
    job's.

    Auth: none (the X-Auth-Token is left out), or Keystone v3 (password of
    user/project, or application credential), the token kept and renewed
    5 minutes before it expires and once on a 401; Glance's endpoint from
    the token's catalogue unless glance_url is set. Create, get and delete
    are retried on 5xx and connection errors (1, 2, 4 s); an upload that
    failed midway fails the job as retryable (SF_ESTORE).
    =========================================================================
*/
#include "sf_worker_classes.h"
#include "sf_imgstore_driver.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

SF_LOG_MODULE ("worker.imgstore");

#define S_RING_SIZE     (4 * 1024 * 1024)   //  bytes between write() and curl
#define S_REPLY_MAX     (4 * 1024 * 1024)   //  a JSON answer is never this big
#define S_TRIES         4                   //  create, get, delete: 1 + 3 retries
#define S_RENEW_MS      (5 * 60 * 1000)     //  renew a token this long before it ends
#define S_CONNECT_S     10L
#define S_STALL_S       120L                //  no byte moved this long: the call fails
#define S_SECRET_MAX    4096

typedef struct {
    char *glance_url;           //  Owned, configured (no trailing /), or NULL
    bool keystone;
    char *auth_url;             //  Owned, Keystone's .../v3
    char *username, *password, *project, *user_domain, *project_domain;
    char *app_id, *app_secret;  //  Owned, application credential
    char *ca_file;              //  Owned or NULL
    pthread_mutex_t lock;       //  guards what follows
    char *token;                //  Owned, cached, or NULL
    int64_t token_end;          //  wall ms at which we renew
    char *endpoint;             //  Owned, Glance's URL in use
} glance_t;

//  A whole answer
typedef struct {
    long status;                //  0: no answer
    char *body;                 //  Owned, NUL-terminated
    size_t size;
    char request_id [96];       //  X-Openstack-Request-Id
    char *subject_token;        //  Owned, X-Subject-Token (Keystone)
} reply_t;

//  One image being uploaded
typedef struct {
    glance_t *glance;           //  Borrowed, the store's
    char id [64];               //  Glance's image id
    char *url;                  //  Owned, .../v2/images/ID/file
    char *token;                //  Owned or NULL
    pthread_t thread;
    bool running;               //  thread started, not joined
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *ring;                 //  Owned, S_RING_SIZE
    size_t head, used;          //  the next byte to send, bytes waiting
    bool eof;                   //  the caller wrote its last byte
    bool stop;                  //  abort: the curl thread gives up
    bool done;                  //  the curl thread ended
    CURLcode result;
    char curl_error [CURL_ERROR_SIZE];
    reply_t reply;              //  the PUT's answer
    EVP_MD_CTX *md;             //  Owned, SHA-512 of what was sent
    uint64_t sent;              //  bytes curl took
} upload_t;

//  --------------------------------------------------------------------------
//  HTTP

static void
s_reply_reset (reply_t *reply)
{
    free (reply->body);
    free (reply->subject_token);
    memset (reply, 0, sizeof (*reply));
}

static size_t
s_on_body (char *data, size_t size, size_t nmemb, void *arg)
{
    reply_t *reply = (reply_t *) arg;
    size_t bytes = size * nmemb;
    if (reply->size + bytes > S_REPLY_MAX)
        return 0;                           //  curl fails the call
    char *body = (char *) realloc (reply->body, reply->size + bytes + 1);
    if (!body)
        return 0;
    memcpy (body + reply->size, data, bytes);
    reply->body = body;
    reply->size += bytes;
    reply->body [reply->size] = 0;
    return bytes;
}

//  The header value of line if it is name's, trimmed, into buf
static bool
s_header (const char *line, size_t size, const char *name, char *buf, size_t buf_size)
{
    size_t len = strlen (name);
    if (size <= len + 1 || strncasecmp (line, name, len) || line [len] != ':')
        return false;
    const char *value = line + len + 1;
    size_t rest = size - len - 1;
    while (rest && (*value == ' ' || *value == '\t')) {
        value++;
        rest--;
    }
    while (rest && (value [rest - 1] == '\r' || value [rest - 1] == '\n' || value [rest - 1] == ' '))
        rest--;
    snprintf (buf, buf_size, "%.*s", (int) rest, value);
    return true;
}

static size_t
s_on_header (char *line, size_t size, size_t nmemb, void *arg)
{
    reply_t *reply = (reply_t *) arg;
    size_t bytes = size * nmemb;
    char token [2048];
    s_header (line, bytes, "X-Openstack-Request-Id", reply->request_id,
              sizeof (reply->request_id));
    if (s_header (line, bytes, "X-Subject-Token", token, sizeof (token))) {
        free (reply->subject_token);
        reply->subject_token = strdup (token);
    }
    return bytes;
}

//  A curl handle for url with the store's settings
static CURL *
s_easy (glance_t *self, const char *url, reply_t *reply, char *errbuf)
{
    CURL *curl = curl_easy_init ();
    if (!curl)
        return NULL;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, S_CONNECT_S);
    curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME, S_STALL_S);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, reply);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
    if (self->ca_file)
        curl_easy_setopt (curl, CURLOPT_CAINFO, self->ca_file);
    return curl;
}

//  One request (no retry). Returns 0 with an answer in reply (any status),
//  or -1 with err when none came (connection, timeout).
static int
s_request (glance_t *self, const char *method, const char *url, const char *token,
           const char *content_type, const char *body, reply_t *reply, sf_err_t *err)
{
    s_reply_reset (reply);
    char errbuf [CURL_ERROR_SIZE] = "";
    CURL *curl = s_easy (self, url, reply, errbuf);
    if (!curl)
        return sf_err_set (err, SF_ESTORE, "cannot make a curl handle");
    struct curl_slist *headers = curl_slist_append (NULL, "Accept: application/json");
    char *line = NULL;
    if (token) {
        line = zsys_sprintf ("X-Auth-Token: %s", token);
        headers = curl_slist_append (headers, line);
        zstr_free (&line);
    }
    if (content_type) {
        line = zsys_sprintf ("Content-Type: %s", content_type);
        headers = curl_slist_append (headers, line);
        zstr_free (&line);
    }
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 120L);
    if (body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform (curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &reply->status);
    curl_easy_cleanup (curl);
    curl_slist_free_all (headers);
    if (rc != CURLE_OK)
        //  SF_ESTORE, a timeout too: a cause that may pass (the job is retryable)
        return sf_err_set (err, SF_ESTORE, "no answer from %s: %s", url, *errbuf ? errbuf
                           : curl_easy_strerror (rc));
    return 0;
}

//  Glance's (or Keystone's) message in an error answer, into buf
static const char *
s_message (const reply_t *reply, char *buf, size_t size)
{
    *buf = 0;
    json_t *root = reply->body ? json_loads (reply->body, 0, NULL) : NULL;
    const char *text = json_string_value (json_object_get (root, "message"));
    if (!text)      //  Keystone: {"error": {"message": ...}}
        text = json_string_value (json_object_get (json_object_get (root, "error"), "message"));
    if (text)
        snprintf (buf, size, "%s", text);
    else if (reply->body)
        snprintf (buf, size, "%.80s", reply->body);
    for (char *c = buf; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    json_decref (root);
    return buf;
}

//  The error of an answer with status >= 400 (what: "creating the image")
static int
s_status_err (const reply_t *reply, const char *what, sf_err_t *err)
{
    char msg [120];
    s_message (reply, msg, sizeof (msg));
    const char *why;
    int code = SF_EINVAL;
    switch (reply->status) {
        case 401: why = "credentials refused"; break;
        case 403: why = "forbidden"; break;
        case 404: why = "not found"; code = SF_ENOENT; break;
        case 409: why = "conflict"; code = SF_ESTATE; break;
        case 410: why = "image deleted meanwhile"; code = SF_ESTORE; break;
        case 413: why = "image too large for Glance"; break;
        case 415: why = "content type refused"; break;
        default:
            why = reply->status >= 500 ? "server error" : "refused";
            if (reply->status >= 500)
                code = SF_ESTORE;
    }
    return sf_err_set (err, code, "Glance: %s: %ld %s (%s)%s%s", what, reply->status, why,
                       msg, *reply->request_id ? " " : "", reply->request_id);
}

//  --------------------------------------------------------------------------
//  Keystone

//  Wall ms of an ISO 8601 UTC time ("2026-12-08T00:37:08.000000Z"), 0 if bad
static int64_t
s_iso_ms (const char *text)
{
    struct tm tm;
    memset (&tm, 0, sizeof (tm));
    const char *rest = text ? strptime (text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!rest)
        return 0;
    return (int64_t) timegm (&tm) * 1000;
}

//  The public image endpoint of a token's catalogue, or NULL
static char *
s_catalog_image (json_t *token)
{
    size_t i, j;
    json_t *service, *endpoint;
    json_array_foreach (json_object_get (token, "catalog"), i, service) {
        if (!json_is_string (json_object_get (service, "type"))
        ||  !streq (json_string_value (json_object_get (service, "type")), "image"))
            continue;
        json_array_foreach (json_object_get (service, "endpoints"), j, endpoint) {
            const char *iface = json_string_value (json_object_get (endpoint, "interface"));
            const char *url = json_string_value (json_object_get (endpoint, "url"));
            if (iface && url && streq (iface, "public"))
                return strdup (url);
        }
    }
    return NULL;
}

//  A new token from Keystone into self (lock held)
static int
s_token_new (glance_t *self, sf_err_t *err)
{
    json_t *identity;
    if (self->app_id)
        identity = json_pack ("{s:[s], s:{s:s, s:s}}", "methods", "application_credential",
                              "application_credential", "id", self->app_id,
                              "secret", self->app_secret);
    else
        identity = json_pack ("{s:[s], s:{s:{s:s, s:{s:s}, s:s}}}", "methods", "password",
                              "password", "user", "name", self->username, "domain", "name",
                              self->user_domain, "password", self->password);
    json_t *auth = json_pack ("{s:{s:o}}", "auth", "identity", identity);
    if (!self->app_id)
        json_object_set_new (json_object_get (auth, "auth"), "scope",
                             json_pack ("{s:{s:s, s:{s:s}}}", "project", "name", self->project,
                                        "domain", "name", self->project_domain));
    char *body = json_dumps (auth, JSON_COMPACT);
    json_decref (auth);
    char *url = zsys_sprintf ("%s/auth/tokens", self->auth_url);
    reply_t reply;
    memset (&reply, 0, sizeof (reply));
    int rc = -1;
    for (int attempt = 0; attempt < S_TRIES; attempt++) {
        if (attempt)
            zclock_sleep (1000 << (attempt - 1));
        rc = s_request (self, "POST", url, NULL, "application/json", body, &reply, err);
        if (rc == 0 && reply.status < 500)
            break;
    }
    json_t *root = NULL;
    if (rc == 0 && reply.status >= 400) {
        char msg [120];
        rc = sf_err_set (err, SF_EINVAL, "Keystone at %s refused the %s: %ld (%s)", self->auth_url,
                         self->app_id ? "application credential" : "password", reply.status,
                         s_message (&reply, msg, sizeof (msg)));
    }
    else
    if (rc == 0) {
        root = json_loads (reply.body ? reply.body : "", 0, NULL);
        json_t *token = json_object_get (root, "token");
        int64_t expires = s_iso_ms (json_string_value (json_object_get (token, "expires_at")));
        if (!reply.subject_token || !expires)
            rc = sf_err_set (err, SF_EPROTO, "Keystone at %s: no token in its answer",
                             self->auth_url);
        else {
            free (self->token);
            self->token = strdup (reply.subject_token);
            int64_t now = zclock_time ();
            int64_t life = expires - now;
            //  Renewed 5 min before its end, or at half its life if shorter
            self->token_end = now + (life > 2 * S_RENEW_MS ? life - S_RENEW_MS : life / 2);
            if (!self->glance_url) {
                char *endpoint = s_catalog_image (token);
                if (!endpoint)
                    rc = sf_err_set (err, SF_EINVAL, "Keystone at %s: no public image "
                                     "endpoint in the catalogue (set glance_url)",
                                     self->auth_url);
                else {
                    size_t len = strlen (endpoint);
                    while (len && endpoint [len - 1] == '/')
                        endpoint [--len] = 0;
                    free (self->endpoint);
                    self->endpoint = endpoint;
                }
            }
        }
    }
    else
        sf_err_prefix (err, "Keystone");
    json_decref (root);
    s_reply_reset (&reply);
    free (url);
    free (body);
    return rc;
}

//  A token (copied: NULL without auth) and the endpoint (copied). renew:
//  the last one was refused. Returns 0 or -1 with err.
static int
s_auth (glance_t *self, bool renew, char **token, char **endpoint, sf_err_t *err)
{
    *token = NULL;
    *endpoint = NULL;
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    if (self->keystone && (renew || !self->token || zclock_time () >= self->token_end))
        rc = s_token_new (self, err);
    if (rc == 0) {
        *token = self->token ? strdup (self->token) : NULL;
        *endpoint = strdup (self->endpoint);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

//  A Glance API call (path under the endpoint) with retries: 5xx and no
//  answer again after 1, 2, 4 s; a 401 once with a new token. Returns 0
//  with a status < 400 in reply, else -1 with err (what says what failed).
static int
s_call (glance_t *self, const char *method, const char *path, const char *content_type,
        const char *body, reply_t *reply, const char *what, sf_err_t *err)
{
    bool renewed = false;
    int rc = -1;
    for (int attempt = 0; attempt < S_TRIES; attempt++) {
        char *token, *endpoint;
        if (s_auth (self, false, &token, &endpoint, err))
            return -1;
        char *url = zsys_sprintf ("%s%s", endpoint, path);
        rc = s_request (self, method, url, token, content_type, body, reply, err);
        free (url);
        free (token);
        free (endpoint);
        if (rc == 0 && reply->status == 401 && self->keystone && !renewed) {
            renewed = true;
            pthread_mutex_lock (&self->lock);
            self->token_end = 0;
            pthread_mutex_unlock (&self->lock);
            attempt--;
            continue;
        }
        if (rc == 0 && reply->status < 500)
            break;
        if (attempt + 1 < S_TRIES) {
            SF_DEBUG (NULL, "Glance: %s: %s; again in %d s", what, rc ? err->text : "5xx",
                      1 << attempt);
            zclock_sleep (1000 << attempt);
        }
    }
    if (rc)
        return sf_err_prefix (err, "Glance: %s", what);
    if (reply->status >= 400)
        return s_status_err (reply, what, err);
    return 0;
}

//  --------------------------------------------------------------------------
//  The store

//  A secret from a file only its owner can read; NULL with err
static char *
s_read_secret (const char *path, const char *key, sf_err_t *err)
{
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd == -1 || fstat (fd, &st)) {
        sf_err_set (err, SF_EINVAL, "imagestore.%s: cannot open '%s': %s", key, path,
                    strerror (errno));
        if (fd != -1)
            close (fd);
        return NULL;
    }
    if (!S_ISREG (st.st_mode) || (st.st_mode & 077)) {
        sf_err_set (err, SF_EINVAL, "imagestore.%s: '%s' must be a regular file that group and "
                    "others cannot read (mode %04o; chmod 600)", key, path,
                    (unsigned) (st.st_mode & 07777));
        close (fd);
        return NULL;
    }
    char buf [S_SECRET_MAX + 1];
    ssize_t got = read (fd, buf, S_SECRET_MAX);
    close (fd);
    if (got < 0) {
        sf_err_set (err, SF_EINVAL, "imagestore.%s: cannot read '%s'", key, path);
        return NULL;
    }
    buf [got] = 0;
    size_t len = strcspn (buf, "\r\n");
    buf [len] = 0;
    if (!len) {
        sf_err_set (err, SF_EINVAL, "imagestore.%s: '%s' is empty", key, path);
        return NULL;
    }
    return strdup (buf);
}

static char *
s_dup_trimmed (const char *url)
{
    if (!url || !*url)
        return NULL;
    char *copy = strdup (url);
    size_t len = strlen (copy);
    while (len && copy [len - 1] == '/')
        copy [--len] = 0;
    return copy;
}

static void
s_glance_destroy (void **priv)
{
    glance_t *self = (glance_t *) *priv;
    if (!self)
        return;
    free (self->glance_url);
    free (self->auth_url);
    free (self->username);
    if (self->password)
        OPENSSL_cleanse (self->password, strlen (self->password));
    free (self->password);
    free (self->project);
    free (self->user_domain);
    free (self->project_domain);
    free (self->app_id);
    if (self->app_secret)
        OPENSSL_cleanse (self->app_secret, strlen (self->app_secret));
    free (self->app_secret);
    free (self->ca_file);
    free (self->token);
    free (self->endpoint);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *priv = NULL;
}

static void
s_curl_init (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
}

static int
s_glance_new (const sf_imgstore_cfg_t *cfg, void **priv, sf_err_t *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_curl_init);
    glance_t *self = (glance_t *) zmalloc (sizeof (glance_t));
    pthread_mutex_init (&self->lock, NULL);
    *priv = self;
    self->glance_url = s_dup_trimmed (cfg->glance_url);
    self->keystone = cfg->auth && streq (cfg->auth, "keystone");
    self->ca_file = cfg->ca_file && *cfg->ca_file ? strdup (cfg->ca_file) : NULL;
    if (cfg->auth && !streq (cfg->auth, "none") && !self->keystone)
        goto bad_auth;
    if (!self->keystone) {
        if (!self->glance_url) {
            sf_err_set (err, SF_EINVAL, "image store 'glance' without Keystone needs glance_url");
            goto failed;
        }
        self->endpoint = strdup (self->glance_url);
        return 0;
    }
    self->auth_url = s_dup_trimmed (cfg->auth_url);
    if (!self->auth_url) {
        sf_err_set (err, SF_EINVAL, "image store 'glance': auth = keystone needs auth_url");
        goto failed;
    }
    if (strlen (self->auth_url) < 3 || !streq (self->auth_url + strlen (self->auth_url) - 3, "/v3")) {
        char *v3 = zsys_sprintf ("%s/v3", self->auth_url);
        free (self->auth_url);
        self->auth_url = v3;
    }
    if (cfg->app_cred_id && *cfg->app_cred_id) {
        self->app_id = strdup (cfg->app_cred_id);
        if (!cfg->secret_file || !*cfg->secret_file) {
            sf_err_set (err, SF_EINVAL, "image store 'glance': app_cred_id needs secret_file");
            goto failed;
        }
        if (!(self->app_secret = s_read_secret (cfg->secret_file, "secret_file", err)))
            goto failed;
    }
    else {
        if (!cfg->username || !*cfg->username || !cfg->project || !*cfg->project
        ||  !cfg->password_file || !*cfg->password_file) {
            sf_err_set (err, SF_EINVAL, "image store 'glance': Keystone needs username, "
                        "project and password_file, or app_cred_id and secret_file");
            goto failed;
        }
        self->username = strdup (cfg->username);
        self->project = strdup (cfg->project);
        self->user_domain = strdup (cfg->user_domain && *cfg->user_domain ? cfg->user_domain
                                    : "Default");
        self->project_domain = strdup (cfg->project_domain && *cfg->project_domain
                                       ? cfg->project_domain : self->user_domain);
        if (!(self->password = s_read_secret (cfg->password_file, "password_file", err)))
            goto failed;
    }
    if (self->glance_url)
        self->endpoint = strdup (self->glance_url);
    return 0;
 bad_auth:
    sf_err_set (err, SF_EINVAL, "image store 'glance': auth must be none or keystone, not '%s'",
                cfg->auth);
 failed:
    s_glance_destroy (priv);
    return -1;
}

//  Is Glance there and do the credentials work? (GET /v2/images?limit=1)
static int
s_glance_check (void *priv, sf_err_t *err)
{
    glance_t *self = (glance_t *) priv;
    reply_t reply;
    memset (&reply, 0, sizeof (reply));
    int rc = s_call (self, "GET", "/v2/images?limit=1", NULL, NULL, &reply, "listing images",
                     err);
    s_reply_reset (&reply);
    if (rc && err)
        err->code = err->code == SF_EINVAL ? SF_EINVAL : SF_ESTORE;
    return rc;
}

//  --------------------------------------------------------------------------
//  The upload: the curl thread pulls from the ring that write() fills

static size_t
s_on_read (char *buffer, size_t size, size_t nitems, void *arg)
{
    upload_t *self = (upload_t *) arg;
    size_t want = size * nitems;
    pthread_mutex_lock (&self->lock);
    while (!self->used && !self->eof && !self->stop)
        pthread_cond_wait (&self->cond, &self->lock);
    if (self->stop) {
        pthread_mutex_unlock (&self->lock);
        return CURL_READFUNC_ABORT;
    }
    size_t take = self->used < want ? self->used : want;
    if (take > S_RING_SIZE - self->head)
        take = S_RING_SIZE - self->head;
    memcpy (buffer, self->ring + self->head, take);
    self->head = (self->head + take) % S_RING_SIZE;
    self->used -= take;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    //  Hashed here, on this thread, while the caller reads the next bytes
    EVP_DigestUpdate (self->md, buffer, take);
    self->sent += take;
    return take;
}

static int
s_on_progress (void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
               curl_off_t ulnow)
{
    (void) dltotal; (void) dlnow; (void) ultotal; (void) ulnow;
    upload_t *self = (upload_t *) arg;
    pthread_mutex_lock (&self->lock);
    bool stop = self->stop;
    pthread_mutex_unlock (&self->lock);
    return stop ? 1 : 0;
}

static void *
s_uploader (void *arg)
{
    upload_t *self = (upload_t *) arg;
    CURL *curl = s_easy (self->glance, self->url, &self->reply, self->curl_error);
    CURLcode rc = CURLE_FAILED_INIT;
    if (curl) {
        struct curl_slist *headers = curl_slist_append (NULL, "Accept: application/json");
        headers = curl_slist_append (headers, "Content-Type: application/octet-stream");
        headers = curl_slist_append (headers, "Transfer-Encoding: chunked");
        if (self->token) {
            char *line = zsys_sprintf ("X-Auth-Token: %s", self->token);
            headers = curl_slist_append (headers, line);
            zstr_free (&line);
        }
        curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt (curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt (curl, CURLOPT_READFUNCTION, s_on_read);
        curl_easy_setopt (curl, CURLOPT_READDATA, self);
        curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, s_on_progress);
        curl_easy_setopt (curl, CURLOPT_XFERINFODATA, self);
        curl_easy_setopt (curl, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
        rc = curl_easy_perform (curl);
        if (rc == CURLE_OK)
            curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &self->reply.status);
        curl_easy_cleanup (curl);
        curl_slist_free_all (headers);
    }
    pthread_mutex_lock (&self->lock);
    self->result = rc;
    self->done = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

//  The PUT's failure as an error (thread joined)
static int
s_upload_err (upload_t *self, sf_err_t *err)
{
    if (self->result != CURLE_OK)
        return sf_err_set (err, SF_ESTORE, "Glance: uploading image %s failed after %" PRIu64
                           " bytes: %s", self->id, self->sent, *self->curl_error
                           ? self->curl_error : curl_easy_strerror (self->result));
    return s_status_err (&self->reply, "uploading the image", err);
}

static void
s_join (upload_t *self)
{
    if (self->running) {
        pthread_join (self->thread, NULL);
        self->running = false;
    }
}

//  DELETE image id, retried (1, 2, 4 s, then every 8 s up to about a
//  minute: a Glance restarting comes back in that time). Absent is done.
static int
s_delete_image (glance_t *self, const char *id, int tries, sf_err_t *err)
{
    char *path = zsys_sprintf ("/v2/images/%s", id);
    reply_t reply;
    memset (&reply, 0, sizeof (reply));
    int rc = -1;
    for (int round = 0; round < tries && rc; round++) {
        if (round)
            zclock_sleep (8000);
        rc = s_call (self, "DELETE", path, NULL, NULL, &reply, "deleting an image", err);
        if (rc && reply.status == 404)
            rc = 0;
        if (rc && reply.status >= 400 && reply.status < 500)
            break;              //  refused: asking again changes nothing
    }
    s_reply_reset (&reply);
    free (path);
    return rc;
}

static void
s_upload_free (upload_t *self)
{
    if (self->running) {
        pthread_mutex_lock (&self->lock);
        self->stop = true;
        pthread_cond_broadcast (&self->cond);
        pthread_mutex_unlock (&self->lock);
        s_join (self);
    }
    s_reply_reset (&self->reply);
    EVP_MD_CTX_free (self->md);
    free (self->ring);
    free (self->url);
    free (self->token);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->lock);
    free (self);
}

//  Add "key": value (string) to props if value is set
static void
s_prop (json_t *props, const char *key, const char *value)
{
    if (value && *value)
        json_object_set_new (props, key, json_string (value));
}

static int
s_glance_open (void *priv, const sf_image_meta_t *meta, sf_image_rec_t *rec, void **upload_p,
               sf_err_t *err)
{
    glance_t *glance = (glance_t *) priv;
    char attempt [16];
    snprintf (attempt, sizeof (attempt), "%u", meta->attempt);
    char *name = zsys_sprintf ("snapfleet-%s-%s-%s", meta->instance_name, meta->disk_target,
                               meta->job_id);
    json_t *props = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", name,
                               "disk_format", "qcow2", "container_format", "bare",
                               "visibility", "private", "image_type", "snapshot",
                               "snapfleet_made_by", "snapfleet");
    s_prop (props, "instance_uuid", meta->instance_uuid);
    s_prop (props, "snapfleet_instance_name", meta->instance_name);
    s_prop (props, "snapfleet_job_id", meta->job_id);
    s_prop (props, "snapfleet_catalog_id", meta->catalog_id);
    s_prop (props, "snapfleet_attempt", attempt);
    s_prop (props, "snapfleet_strategy", meta->strategy);
    s_prop (props, "snapfleet_consistency", meta->consistency);
    s_prop (props, "snapfleet_disk", meta->disk_target);
    char *body = json_dumps (props, JSON_COMPACT);
    json_decref (props);
    free (name);
    reply_t reply;
    memset (&reply, 0, sizeof (reply));
    int rc = s_call (glance, "POST", "/v2/images", "application/json", body, &reply,
                     "creating the image", err);
    free (body);
    json_t *root = rc ? NULL : json_loads (reply.body ? reply.body : "", 0, NULL);
    const char *id = json_string_value (json_object_get (root, "id"));
    if (rc == 0 && (!id || !*id || strlen (id) >= sizeof (((upload_t *) 0)->id)
                    || strspn (id, "0123456789abcdefABCDEF-") != strlen (id)))
        rc = sf_err_set (err, SF_EPROTO, "Glance: creating the image: no valid id in its "
                         "answer %s", reply.request_id);
    upload_t *self = NULL;
    if (rc == 0) {
        self = (upload_t *) zmalloc (sizeof (upload_t));
        self->glance = glance;
        snprintf (self->id, sizeof (self->id), "%s", id);
        pthread_mutex_init (&self->lock, NULL);
        pthread_cond_init (&self->cond, NULL);
        self->ring = (char *) malloc (S_RING_SIZE);
        self->md = EVP_MD_CTX_new ();
        char *endpoint = NULL;
        if (!self->ring || !self->md || !EVP_DigestInit_ex (self->md, EVP_sha512 (), NULL))
            rc = sf_err_set (err, SF_ESTORE, "cannot start SHA-512");
        else
        if ((rc = s_auth (glance, false, &self->token, &endpoint, err)) == 0) {
            self->url = zsys_sprintf ("%s/v2/images/%s/file", endpoint, self->id);
            snprintf (rec->id, sizeof (rec->id), "%s", self->id);
            rec->path = zsys_sprintf ("%s/v2/images/%s", endpoint, self->id);
            if (pthread_create (&self->thread, NULL, s_uploader, self))
                rc = sf_err_set (err, SF_ESTORE, "cannot start the upload thread");
            else
                self->running = true;
        }
        free (endpoint);
        if (rc) {
            sf_err_t ignored = SF_ERR_INIT;
            s_delete_image (glance, self->id, 1, &ignored);
            zstr_free (&rec->path);
            *rec->id = 0;
            s_upload_free (self);
            self = NULL;
        }
    }
    json_decref (root);
    s_reply_reset (&reply);
    *upload_p = self;
    return rc;
}

static int
s_glance_write (void *upload, const char *data, size_t size, sf_err_t *err)
{
    upload_t *self = (upload_t *) upload;
    pthread_mutex_lock (&self->lock);
    while (size) {
        while (self->used == S_RING_SIZE && !self->done)
            pthread_cond_wait (&self->cond, &self->lock);
        if (self->done)
            break;
        size_t tail = (self->head + self->used) % S_RING_SIZE;
        size_t room = S_RING_SIZE - self->used;
        size_t run = S_RING_SIZE - tail;
        size_t take = size < room ? size : room;
        if (take > run)
            take = run;
        memcpy (self->ring + tail, data, take);
        self->used += take;
        data += take;
        size -= take;
        pthread_cond_broadcast (&self->cond);
    }
    bool done = self->done;
    pthread_mutex_unlock (&self->lock);
    if (done) {                 //  curl ended before the last byte: failed
        s_join (self);
        if (self->result == CURLE_OK && self->reply.status < 400)
            return sf_err_set (err, SF_ESTORE, "Glance: image %s: upload ended early (%ld)",
                               self->id, self->reply.status);
        return s_upload_err (self, err);
    }
    return 0;
}

//  Is the image Glance reports what we sent? Returns 0 or -1 with err.
static int
s_verify (upload_t *self, json_t *image, uint64_t size, const char *sha512, sf_err_t *err)
{
    const char *status = json_string_value (json_object_get (image, "status"));
    json_t *got_size = json_object_get (image, "size");
    const char *algo = json_string_value (json_object_get (image, "os_hash_algo"));
    const char *hash = json_string_value (json_object_get (image, "os_hash_value"));
    json_t *vsize = json_object_get (image, "virtual_size");
    if (!status || !streq (status, "active"))
        return sf_err_set (err, SF_ESTORE, "Glance: image %s is '%s' after its upload, not "
                           "active", self->id, status ? status : "?");
    if (!json_is_integer (got_size) || (uint64_t) json_integer_value (got_size) != size)
        return sf_err_set (err, SF_ESTORE, "Glance: image %s has %" JSON_INTEGER_FORMAT
                           " bytes, %" PRIu64 " were sent", self->id,
                           json_is_integer (got_size) ? json_integer_value (got_size) : -1,
                           size);
    if (!algo || !streq (algo, "sha512"))
        return sf_err_set (err, SF_ESTORE, "Glance: image %s is hashed with '%s'; snapfleet "
                           "checks sha512", self->id, algo ? algo : "nothing");
    if (!hash || strcasecmp (hash, sha512))
        return sf_err_set (err, SF_ESTORE, "Glance: image %s: its sha512 %.16s... is not "
                           "that of the bytes sent, %.16s...", self->id, hash ? hash : "-",
                           sha512);
    if (!json_is_integer (vsize))
        return sf_err_set (err, SF_ESTORE, "Glance: image %s: no virtual_size (Glance did not "
                           "read it as qcow2)", self->id);
    return 0;
}

static int
s_glance_commit (void *upload, const sf_image_meta_t *meta, const sf_image_rec_t *rec,
                 sf_err_t *err)
{
    (void) meta;
    upload_t *self = (upload_t *) upload;
    pthread_mutex_lock (&self->lock);
    self->eof = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    s_join (self);
    if (self->result != CURLE_OK || self->reply.status >= 300 || self->reply.status < 200)
        return s_upload_err (self, err);
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (!EVP_DigestFinal_ex (self->md, digest, &digest_len) || digest_len != 64)
        return sf_err_set (err, SF_ESTORE, "cannot hash with SHA-512");
    char sha512 [129];
    for (unsigned int i = 0; i < digest_len; i++)
        snprintf (sha512 + 2 * i, 3, "%02x", digest [i]);
    if (self->sent != rec->size)
        return sf_err_set (err, SF_ESTORE, "Glance: image %s: %" PRIu64 " bytes sent of %"
                           PRIu64, self->id, self->sent, rec->size);
    char *path = zsys_sprintf ("/v2/images/%s", self->id);
    reply_t reply;
    memset (&reply, 0, sizeof (reply));
    int rc = s_call (self->glance, "GET", path, NULL, NULL, &reply, "reading the image back",
                     err);
    free (path);
    if (rc == 0) {
        json_t *image = json_loads (reply.body ? reply.body : "", 0, NULL);
        rc = s_verify (self, image, rec->size, sha512, err);
        json_decref (image);
    }
    s_reply_reset (&reply);
    if (rc)
        return -1;
    SF_INFO (NULL, "image %s of disk '%s' in Glance: %" PRIu64 " bytes, sha512 %.16s...",
             self->id, rec->disk_target ? rec->disk_target : "?", rec->size, sha512);
    s_upload_free (self);
    return 0;
}

static void
s_glance_abort (void *upload)
{
    upload_t *self = (upload_t *) upload;
    pthread_mutex_lock (&self->lock);
    self->stop = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    s_join (self);
    //  The image would stay queued or saving: it goes (a Glance that
    //  restarts meanwhile is asked again for about a minute)
    sf_err_t err = SF_ERR_INIT;
    if (s_delete_image (self->glance, self->id, 8, &err))
        SF_WARN (NULL, "image %s left in Glance (not deleted: %s)", self->id, err.text);
    else
        SF_INFO (NULL, "image %s deleted from Glance after its failed upload", self->id);
    s_upload_free (self);
}

//  --------------------------------------------------------------------------
//  Retention and listing

static bool
s_id_valid (const char *id)
{
    size_t len = strlen (id);
    return len >= 1 && len < 64 && strspn (id, "0123456789abcdefABCDEF-") == len;
}

static int
s_glance_delete (void *priv, const char *id, const char *catalog_id, const char *job_id,
                 sf_err_t *err)
{
    glance_t *self = (glance_t *) priv;
    if (!s_id_valid (id))
        return sf_err_set (err, SF_EINVAL, "image '%s' is not one snapfleet made for job %s; "
                           "not deleted (not a Glance image id)", id, job_id);
    char *path = zsys_sprintf ("/v2/images/%s", id);
    reply_t reply;
    memset (&reply, 0, sizeof (reply));
    int rc = s_call (self, "GET", path, NULL, NULL, &reply, "reading an image", err);
    free (path);
    if (rc && reply.status == 404) {
        s_reply_reset (&reply);
        return 0;                       //  already gone
    }
    if (rc == 0) {
        json_t *image = json_loads (reply.body ? reply.body : "", 0, NULL);
        const char *job = json_string_value (json_object_get (image, "snapfleet_job_id"));
        const char *cat = json_string_value (json_object_get (image, "snapfleet_catalog_id"));
        if (!job || !cat || !streq (job, job_id) || !streq (cat, catalog_id))
            rc = sf_err_set (err, SF_EINVAL, "image '%s' is not one snapfleet made for job %s; "
                             "not deleted (its properties say job '%s', catalogue '%s')", id,
                             job_id, job ? job : "", cat ? cat : "");
        json_decref (image);
    }
    s_reply_reset (&reply);
    if (rc == 0)
        rc = s_delete_image (self, id, 1, err);
    return rc;
}

static int
s_glance_list (void *priv, zlistx_t *ids, sf_err_t *err)
{
    glance_t *self = (glance_t *) priv;
    char *path = strdup ("/v2/images?snapfleet_made_by=snapfleet&status=active&limit=100");
    reply_t reply;
    memset (&reply, 0, sizeof (reply));
    int rc = 0;
    for (int page = 0; path && page < 10000 && rc == 0; page++) {
        rc = s_call (self, "GET", path, NULL, NULL, &reply, "listing images", err);
        zstr_free (&path);
        json_t *root = rc ? NULL : json_loads (reply.body ? reply.body : "", 0, NULL);
        if (rc == 0 && !json_is_array (json_object_get (root, "images")))
            rc = sf_err_set (err, SF_EPROTO, "Glance: listing images: no list in its answer");
        size_t i;
        json_t *image;
        json_array_foreach (json_object_get (root, "images"), i, image) {
            const char *id = json_string_value (json_object_get (image, "id"));
            if (id && s_id_valid (id))
                zlistx_add_end (ids, strdup (id));
        }
        //  "next": "/v2/images?...&marker=ID", under the endpoint
        const char *next = json_string_value (json_object_get (root, "next"));
        if (rc == 0 && next && strncmp (next, "/v2/images?", 11) == 0)
            path = strdup (next);
        json_decref (root);
    }
    free (path);
    s_reply_reset (&reply);
    return rc;
}

const sf_imgstore_driver_t sf_imgstore_glance_driver = {
    .name = "glance",
    .new = s_glance_new,
    .destroy = s_glance_destroy,
    .check = s_glance_check,
    .open = s_glance_open,
    .adopt = NULL,
    .write = s_glance_write,
    .advance = NULL,
    .commit = s_glance_commit,
    .abort = s_glance_abort,
    .delete = s_glance_delete,
    .list = s_glance_list,
};
