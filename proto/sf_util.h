/*  =========================================================================
    sf_util - time, duration/size parsing and small helpers shared by all
    three programs
    =========================================================================
*/
#ifndef SF_UTIL_H_INCLUDED
#define SF_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

//  Wall clock, ms since the epoch.
int64_t
    sf_time_now_ms (void);

//  Monotonic clock, ms (for measuring intervals).
int64_t
    sf_time_mono_ms (void);

//  A steady wall clock, ms since the epoch: the wall clock when the
//  process first asked, moved on by the monotonic clock since. A step of
//  the system clock (NTP, a VM's host) does not move it, so deadlines kept
//  in it (a kept pause slot) last as long as they say; it may drift from
//  the wall clock by the steps since the process began.
int64_t
    sf_time_steady_ms (void);

//  Monotonic clock in microseconds, for sub-ms intervals.
int64_t
    sf_time_mono_us (void);

//  Format wall-clock ms as RFC 3339 UTC with milliseconds into buf.
//  Returns buf.
char *
    sf_time_rfc3339 (int64_t ms, char *buf, size_t size);

//  Parse a duration: "250ms", "30s", "5m", "2h", "1d", or a bare number of
//  seconds. Returns 0 and sets *ms, or -1 if malformed or negative.
int
    sf_parse_duration_ms (const char *text, int64_t *ms);

//  Parse a size: "512", "4K", "64MiB", "1G", "2GiB" (IEC, 1024-based).
//  Returns 0 and sets *bytes, or -1 if malformed.
int
    sf_parse_size (const char *text, uint64_t *bytes);

//  Format bytes as "1.5 GiB", "512 B" into buf. Returns buf.
char *
    sf_format_size (uint64_t bytes, char *buf, size_t size);

//  True if name is a safe identifier for files and logs: 1..128 chars of
//  [A-Za-z0-9._:-], not starting with '.' or '-'.
bool
    sf_name_is_safe (const char *name);

//  Length (1-4) of the well-formed UTF-8 sequence at p, or 0 if there is
//  none there (overlong, surrogate, beyond U+10FFFF, truncated, or NUL).
size_t
    sf_utf8_seq_len (const char *p);

//  True if the whole string is well-formed UTF-8.
bool
    sf_utf8_valid (const char *text);

//  A heap copy of text, "" for NULL (protobuf-c leaves absent strings
//  NULL or ""): the caller frees it.
char *
    sf_strdup0 (const char *text);

//  --------------------------------------------------------------------------
//  Durable files: after a crash a file is the old one or the new one,
//  whole, never a mix or a half

//  fsync the file or directory at path. Returns 0, or -1 with errno.
int
    sf_fsync_path (const char *path);

//  Publish tmp (already written and fsynced) as path: rename it over
//  path, then fsync path's directory so that the rename survives a crash.
//  Returns 0, or -1 with errno (ELOOP if path is a symbolic link: nothing
//  is published through a planted link).
int
    sf_file_commit (const char *tmp, const char *path);

//  Writes the new content to file: returns 0, or -1 (errno set)
typedef int (sf_file_write_fn) (FILE *file, void *arg);

//  Replace path durably with what fill (with arg) writes: into PATH.tmp
//  (made afresh with sf_file_create_tmp, mode SF_FILE_MODE), flushed and
//  fsynced, then sf_file_commit.
//  Returns 0, or -1 with err (SF_EIO) "cannot write WHAT'PATH.tmp': ..."
//  or "cannot commit WHAT'PATH': ..." (what: "" or a noun and a space,
//  "journal entry "); PATH.tmp is gone then and path untouched.
int
    sf_file_replace (const char *path, const char *what, sf_file_write_fn *fill,
                     void *arg, sf_err_t *err);

//  --------------------------------------------------------------------------
//  Removing a directory that may not be ours, without following symlinks

//  True if the regular file name (in the directory being removed) may go
typedef bool (sf_dir_match_fn) (const char *name);

//  Remove directory name of directory dir, if it holds nothing but regular
//  files whose names match accepts; those go. Never follows a symlink:
//  name is opened O_NOFOLLOW|O_DIRECTORY under dir (openat), so a symlink
//  (or anything not a directory) in its place is left and its target
//  untouched; in it, entries are removed with unlinkat only when fstatat
//  (AT_SYMLINK_NOFOLLOW) says they are regular files that match, so a
//  symlink, a subdirectory or any other file stays, with the directory.
//  Returns 0 if name is gone (or never was), or -1 with errno (ENOTEMPTY:
//  something that is not to go stays; ELOOP or ENOTDIR: not a directory).
int
    sf_dir_remove_at (const char *dir, const char *name, sf_dir_match_fn *match);

//  Self test of this class
void
    sf_util_test (bool verbose);

//  --------------------------------------------------------------------------
//  In an actor whose work is over: read (and drop) what the owner sends
//  until "$TERM" or the pipe is gone, so the owner's destroy returns.
void
    sf_actor_wait_term (zsock_t *pipe);

//  Files and directories with explicit modes, whatever the umask

#define SF_FILE_MODE    0640        //  images, metadata, journal entries
#define SF_DIR_MODE     0750        //  directories snapfleet makes for them

//  True if path is a symbolic link (not followed).
bool
    sf_path_is_symlink (const char *path);

//  Create the temp file tmp afresh: whatever is at tmp (a stale file, a
//  planted symlink) is removed, not followed, then tmp is opened
//  O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC and given exactly mode.
//  Returns the fd (caller closes it), or -1 with errno.
int
    sf_file_create_tmp (const char *tmp, mode_t mode);

//  Make directory path and its missing parents, each one made with exactly
//  mode; existing ones are left as they are. Returns 0, or -1 with errno
//  (ENOTDIR if path or a parent is not a directory).
int
    sf_dir_make (const char *path, mode_t mode);

#endif
