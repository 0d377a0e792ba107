/* SPDX-License-Identifier: ISC */
/*
 * The files of a key rotation, and the order in which they change so that
 * a crash at any instant leaves a data directory that opens with the old
 * keys or with the new ones, never with neither.
 *
 * A master-key rotation writes master.key.new, sealed.keys.new and the
 * re-keyed copy consentd.db.rotating beside the live files, syncs them,
 * and only then writes rotate-master.commit: that one rename is the
 * commit point. Before it, recovery removes the new files (the old ones
 * were never touched); after it, recovery renames each new file over its
 * old one. Each step of either is idempotent, so a crash during recovery
 * is recovered the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "consentd/crypto.h"

#define COMMIT_TMP	CM_ROTATE_COMMIT_FILE ".tmp"
#define COMMIT_TEXT	"consentd master-key rotation v1: roll forward\n"

static int
rot_path(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static int
rot_fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
cm_fsync_path(const char *path, const char *dir)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	if (rc == -1)
		return -1;
	return rot_fsync_dir(dir);
}

static bool
rot_exists(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;

	return rot_path(path, sizeof(path), dir, name) == 0 && lstat(path, &st) == 0;
}

/* Removes DIR/NAME if it is there. 0, or -1 with errno. */
static int
rot_unlink(const char *dir, const char *name)
{
	char path[4096];

	if (rot_path(path, sizeof(path), dir, name) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return unlink(path) == -1 && errno != ENOENT ? -1 : 0;
}

/* Renames DIR/FROM over DIR/TO when FROM is there (done before otherwise). */
static int
rot_rename(const char *dir, const char *from, const char *to)
{
	char pf[4096], pt[4096];

	if (rot_path(pf, sizeof(pf), dir, from) == -1 ||
	    rot_path(pt, sizeof(pt), dir, to) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (rename(pf, pt) == -1)
		return errno == ENOENT ? 0 : -1;
	return 0;
}

/*
 * Overwrites the key file DIR/NAME in place with zeros and syncs it, so
 * the old key's bytes do not outlive it in the file's blocks (as far as
 * the file system writes in place). Only once its successor is committed.
 */
static int
rot_wipe_key(const char *dir, const char *name)
{
	uint8_t zero[CM_KEY_LEN];
	char path[4096];
	ssize_t w;
	int fd, rc = -1;

	if (rot_path(path, sizeof(path), dir, name) == -1)
		return -1;
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	memset(zero, 0, sizeof(zero));
	w = pwrite(fd, zero, sizeof(zero), 0);
	if (w == (ssize_t)sizeof(zero) && fsync(fd) == 0)
		rc = 0;
	close(fd);
	return rc;
}

/* After the commit record: every new file over its old one, in this order. */
static int
rot_roll_forward(const char *dir)
{
	if (rot_exists(dir, CM_DB_ROTATING_FILE)) {
		/*
		 * The old database was checkpointed and closed before the copy
		 * was made and nothing opened it since: its -wal and -shm hold
		 * nothing, and a -wal left beside the new file would be read
		 * into it.
		 */
		if (rot_unlink(dir, CM_DB_FILE "-wal") == -1 ||
		    rot_unlink(dir, CM_DB_FILE "-shm") == -1 ||
		    rot_rename(dir, CM_DB_ROTATING_FILE, CM_DB_FILE) == -1)
			return -1;
	}
	if (rot_rename(dir, CM_SEALED_NEW_FILE, CM_SEALED_KEYS_FILE) == -1)
		return -1;
	if (rot_exists(dir, CM_MASTER_NEW_FILE) &&
	    (rot_wipe_key(dir, CM_MASTER_KEY_FILE) == -1 ||
	    rot_rename(dir, CM_MASTER_NEW_FILE, CM_MASTER_KEY_FILE) == -1))
		return -1;
	if (rot_fsync_dir(dir) == -1 || rot_unlink(dir, CM_ROTATE_COMMIT_FILE) == -1)
		return -1;
	return rot_fsync_dir(dir);
}

/* Before the commit record: the rotation never happened. */
static int
rot_roll_back(const char *dir, bool *any)
{
	static const char *const made[] = {
		CM_DB_ROTATING_FILE, CM_DB_ROTATING_FILE "-journal",
		CM_DB_ROTATING_FILE "-wal", CM_DB_ROTATING_FILE "-shm",
		CM_MASTER_NEW_FILE, CM_SEALED_NEW_FILE, COMMIT_TMP,
	};
	size_t i;

	*any = false;
	for (i = 0; i < CM_NELEM(made); i++) {
		if (!rot_exists(dir, made[i]))
			continue;
		*any = true;
		if (rot_unlink(dir, made[i]) == -1)
			return -1;
	}
	return *any ? rot_fsync_dir(dir) : 0;
}

cm_result
cm_keys_recover(const char *dir, int *what, char *err, size_t errlen)
{
	bool any;

	if (what != NULL)
		*what = 0;
	if (rot_exists(dir, CM_ROTATE_COMMIT_FILE)) {
		if (rot_roll_forward(dir) == -1) {
			snprintf(err, errlen, "cannot finish the interrupted master-key "
			    "rotation in %s: %s", dir, strerror(errno));
			return CM_IOERR;
		}
		if (what != NULL)
			*what = 1;
		return CM_OK;
	}
	if (rot_roll_back(dir, &any) == -1) {
		snprintf(err, errlen, "cannot undo the interrupted master-key rotation "
		    "in %s: %s", dir, strerror(errno));
		return CM_IOERR;
	}
	if (any && what != NULL)
		*what = -1;
	return CM_OK;
}

cm_result
cm_keys_rotate_commit(const char *dir, char *err, size_t errlen)
{
	char tmp[4096], path[4096];
	size_t len = strlen(COMMIT_TEXT);
	int fd;

	if (rot_path(tmp, sizeof(tmp), dir, COMMIT_TMP) == -1 ||
	    rot_path(path, sizeof(path), dir, CM_ROTATE_COMMIT_FILE) == -1) {
		snprintf(err, errlen, "data directory path is too long");
		return CM_INVALID;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1)
		goto fail;
	if (write(fd, COMMIT_TEXT, len) != (ssize_t)len || fsync(fd) == -1) {
		close(fd);
		goto fail;
	}
	close(fd);
	/* The commit point: from this rename on, recovery rolls forward. */
	if (rename(tmp, path) == -1 || rot_fsync_dir(dir) == -1)
		goto fail;
	if (rot_roll_forward(dir) == -1) {
		snprintf(err, errlen, "the rotation is committed but not yet in place "
		    "(%s); run the command again to finish it", strerror(errno));
		return CM_IOERR;
	}
	return CM_OK;
fail:
	snprintf(err, errlen, "cannot commit the rotation: %s", strerror(errno));
	return CM_IOERR;
}

cm_result
cm_keys_audit_finish(const char *dir, bool commit, char *err, size_t errlen)
{
	int rc;

	if (commit)
		rc = !rot_exists(dir, CM_AUDIT_NEW_FILE) ? 0 :
		    rot_wipe_key(dir, CM_AUDIT_KEY_FILE) == -1 ? -1 :
		    rot_rename(dir, CM_AUDIT_NEW_FILE, CM_AUDIT_KEY_FILE);
	else
		rc = rot_unlink(dir, CM_AUDIT_NEW_FILE);
	if (rc == -1 || rot_fsync_dir(dir) == -1) {
		snprintf(err, errlen, "cannot %s %s/%s: %s", commit ? "install" : "remove",
		    dir, CM_AUDIT_NEW_FILE, strerror(errno));
		return CM_IOERR;
	}
	return CM_OK;
}
