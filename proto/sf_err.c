/*  =========================================================================
    sf_err - serializable error value
    =========================================================================
*/
#include "sf_core.h"

static const char *s_names [SF_E_LAST] = {
    [SF_OK] = "OK", [SF_EINVAL] = "EINVAL", [SF_ENOENT] = "ENOENT",
    [SF_EEXIST] = "EEXIST", [SF_EPROTO] = "EPROTO", [SF_EIO] = "EIO",
    [SF_ENOTSUP] = "ENOTSUP", [SF_ETIMEDOUT] = "ETIMEDOUT",
    [SF_EBUSY] = "EBUSY", [SF_ESTATE] = "ESTATE", [SF_EHV] = "EHV",
    [SF_ESTORE] = "ESTORE", [SF_EDB] = "EDB", [SF_ENODE] = "ENODE",
    [SF_ECANCELED] = "ECANCELED", [SF_ECEPH] = "ECEPH",
};

int
sf_err_set (sf_err_t *err, int code, const char *format, ...)
{
    if (err) {
        va_list args;
        va_start (args, format);
        err->code = code;
        vsnprintf (err->text, sizeof (err->text), format, args);
        va_end (args);
    }
    return -1;
}

int
sf_err_prefix (sf_err_t *err, const char *format, ...)
{
    if (err) {
        char joined [2 * sizeof (err->text)];
        va_list args;
        va_start (args, format);
        int len = vsnprintf (joined, sizeof (err->text), format, args);
        va_end (args);
        if (len < 0)
            len = 0;
        if ((size_t) len >= sizeof (err->text))
            len = sizeof (err->text) - 1;
        //  Text is bounded by its buffer, so joined always has room
        strcpy (joined + len, ": ");
        strcpy (joined + len + 2, err->text);
        memcpy (err->text, joined, sizeof (err->text) - 1);
        err->text [sizeof (err->text) - 1] = '\0';
    }
    return -1;
}

void
sf_err_clear (sf_err_t *err)
{
    if (err) {
        err->code = 0;
        err->text [0] = '\0';
    }
}

const char *
sf_err_name (int code)
{
    if (code < 0 || code >= SF_E_LAST || !s_names [code])
        return "EUNKNOWN";
    return s_names [code];
}

void
sf_err_test (bool verbose)
{
    (void) verbose;
    printf (" * sf_err: ");
    //  @selftest
    sf_err_t err = SF_ERR_INIT;
    assert (sf_err_set (&err, SF_ENOENT, "domain '%s' not found", "vm1") == -1);
    assert (err.code == SF_ENOENT);
    assert (streq (err.text, "domain 'vm1' not found"));
    sf_err_prefix (&err, "cannot snapshot '%s'", "vm1");
    assert (streq (err.text, "cannot snapshot 'vm1': domain 'vm1' not found"));
    assert (streq (sf_err_name (SF_ENOENT), "ENOENT"));
    assert (streq (sf_err_name (999), "EUNKNOWN"));
    assert (sf_err_set (NULL, SF_EIO, "ignored") == -1);
    sf_err_clear (&err);
    assert (err.code == 0 && err.text [0] == '\0');
    //  Overlong text is truncated, never overflows
    char big [600];
    memset (big, 'x', sizeof (big) - 1);
    big [sizeof (big) - 1] = '\0';
    sf_err_set (&err, SF_EIO, "%s", big);
    assert (strlen (err.text) == sizeof (err.text) - 1);
    //  @end
    printf ("OK\n");
}
