/*  =========================================================================
    sf_store_priv - what sf_store shares with its self test only
    =========================================================================
*/
#ifndef SF_STORE_PRIV_H_INCLUDED
#define SF_STORE_PRIV_H_INCLUDED

//  Run a script of SQL statements (no result rows). Returns 0, or -1 with
//  err set (SF_EDB).
int
    sf_store_script (sf_store_t *self, const char *sql, sf_err_t *err);

//  Read PRAGMA user_version into *version. Returns 0, or -1 with err set.
int
    sf_store_user_version (sf_store_t *self, int *version, sf_err_t *err);

//  The script of migration index (0 .. SF_STORE_VERSION - 1), which
//  brings user_version from index to index + 1.
const char *
    sf_store_migration (int index);

#endif
