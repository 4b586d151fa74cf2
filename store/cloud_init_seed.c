/* cloud_init_seed: NoCloud seed images through libisofs (see cloud_init_seed.h). */
#include "store/cloud_init_seed.h"

#include <errno.h>
#include <fcntl.h>
/* libburn is not used: libisofs then declares struct burn_source itself */
#define LIBISOFS_WITHOUT_LIBBURN yes
#include <libisofs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/vm_store.h"

char *cloud_init_default_meta_data(const char *vm_name)
{
    char *s;
    if (asprintf(&s, "instance-id: \"%s\"\nlocal-hostname: \"%s\"\n", vm_name, vm_name) < 0) return NULL;
    return s;
}

/* libisofs keeps process-wide state (its message queue, character set) that iso_init sets up
 * once; a process initialises it once, and never finishes it (it is used until exit). */
static pthread_once_t iso_once = PTHREAD_ONCE_INIT;
static int iso_init_status;

static void iso_init_once(void)
{
    iso_init_status = iso_init_with_flag(1); /* bit0: leave the process's locale alone */
    /* no messages on stderr: every failure comes back as an error code, reported by the caller */
    if (iso_init_status >= 0) iso_set_msgs_severities("NEVER", "NEVER", "libisofs");
}

static void stamp(IsoNode *n, time_t when)
{
    iso_node_set_mtime(n, when);
    iso_node_set_atime(n, when);
    iso_node_set_ctime(n, when);
    iso_node_set_uid(n, 0);
    iso_node_set_gid(n, 0);
}

/* Add a file `name` with text's bytes to the image's root. */
static int add_file(IsoImage *image, const char *name, const char *text, time_t when)
{
    size_t len = strlen(text);
    unsigned char *copy = malloc(len + 1); /* owned by the stream from here on */
    if (!copy) return (int)ISO_OUT_OF_MEM;
    memcpy(copy, text, len);
    IsoStream *stream;
    int r = iso_memory_stream_new(copy, len, &stream);
    if (r < 0) {
        free(copy);
        return r;
    }
    IsoFile *file;
    r = iso_image_add_new_file(image, iso_image_get_root(image), name, stream, &file); /* takes our reference */
    if (r < 0) {
        iso_stream_unref(stream);
        return r;
    }
    iso_node_set_permissions((IsoNode *)file, 0444);
    stamp((IsoNode *)file, when);
    return 0;
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Stream the image into fd. 0 or -errno; *iso_err is set to the libisofs error when there is one. */
static int stream_image(IsoImage *image, time_t when, int fd, int *iso_err)
{
    IsoWriteOpts *opts;
    int r = iso_write_opts_new(&opts, 0);
    if (r < 0) {
        *iso_err = r;
        return -EIO;
    }
    /* the PVD's dates as a fixed UTC string, so the image does not depend on the time zone */
    char vol_time[32];
    struct tm tm;
    if (!gmtime_r(&when, &tm) || strftime(vol_time, sizeof(vol_time), "%Y%m%d%H%M%S00", &tm) != 16) vol_time[0] = 0;
    if ((r = iso_write_opts_set_rockridge(opts, 1)) < 0 || (r = iso_write_opts_set_joliet(opts, 1)) < 0 ||
        (r = iso_write_opts_set_relaxed_vol_atts(opts, 1)) < 0 || /* keep "cidata" lower-case, as genisoimage does */
        /* Joliet names as genisoimage writes them: "user-data", not "user-data.;1" */
        (r = iso_write_opts_set_omit_version_numbers(opts, 2)) < 0 || (r = iso_write_opts_set_no_force_dots(opts, 2)) < 0 ||
        (r = iso_write_opts_set_always_gmt(opts, 1)) < 0 || (r = iso_write_opts_set_replace_timestamps(opts, 2)) < 0 ||
        (r = iso_write_opts_set_default_timestamp(opts, when)) < 0 ||
        (r = iso_write_opts_set_pvd_times(opts, when, when, 0, 0, vol_time)) < 0) {
        iso_write_opts_free(opts);
        *iso_err = r;
        return -EIO;
    }
    struct burn_source *src;
    r = iso_image_create_burn_source(image, opts, &src); /* a libisofs thread writes into a ring buffer */
    iso_write_opts_free(opts);
    if (r < 0) {
        *iso_err = r;
        return -EIO;
    }
    unsigned char block[2048];
    int n, wr = 0;
    while ((n = src->read_xt(src, block, sizeof(block))) > 0)
        if ((wr = write_all(fd, block, (size_t)n))) break;
    if (wr || n < 0) src->cancel(src); /* ends the writer thread */
    src->free_data(src);
    free(src);
    if (wr) return wr;
    if (n < 0) {
        *iso_err = (int)ISO_WRITE_ERROR;
        return -EIO;
    }
    return 0;
}

int cloud_init_seed_write(const struct vm_cloud_init *ci, const char *vm_name, const char *path, time_t when,
                          char *err, size_t errlen)
{
    if (!ci->user_data) {
        snprintf(err, errlen, "cloud-init seed '%s': no user-data", path);
        return -EINVAL;
    }
    pthread_once(&iso_once, iso_init_once);
    if (iso_init_status < 0) {
        snprintf(err, errlen, "cloud-init seed '%s': libisofs: %s", path, iso_error_to_msg(iso_init_status));
        return -EIO;
    }
    char *meta = ci->meta_data ? NULL : cloud_init_default_meta_data(vm_name);
    if (!ci->meta_data && !meta) return -ENOMEM;
    IsoImage *image = NULL;
    int iso_err = 0, r = iso_image_new(CLOUD_INIT_VOLUME_ID, &image);
    if (r < 0) {
        iso_err = r;
        image = NULL;
    } else {
        iso_image_set_data_preparer_id(image, "vmd");
        stamp((IsoNode *)iso_image_get_root(image), when);
        if ((r = add_file(image, "user-data", ci->user_data, when)) < 0 ||
            (r = add_file(image, "meta-data", ci->meta_data ? ci->meta_data : meta, when)) < 0 ||
            (ci->network_config && (r = add_file(image, "network-config", ci->network_config, when)) < 0))
            iso_err = r;
    }
    free(meta);
    if (iso_err) {
        if (image) iso_image_unref(image);
        snprintf(err, errlen, "cloud-init seed '%s': libisofs: %s", path, iso_error_to_msg(iso_err));
        return -EIO;
    }

    char tmp[4200];
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
        iso_image_unref(image);
        snprintf(err, errlen, "cloud-init seed '%s': path too long", path);
        return -ENAMETOOLONG;
    }
    /* mkstemp: O_EXCL, 0600; in a VM's directory (which its worker owns) nothing planted there
     * is followed or reused */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        iso_image_unref(image);
        snprintf(err, errlen, "cloud-init seed '%s': creating a temporary file: %s", path, strerror(-r));
        return r;
    }
    r = stream_image(image, when, fd, &iso_err);
    iso_image_unref(image);
    const char *step = "writing";
    if (!r && fsync(fd) < 0) r = -errno;
    if (close(fd) < 0 && !r) r = -errno;
    if (!r && rename(tmp, path) < 0) {
        r = -errno;
        step = "renaming into place";
    }
    if (r) {
        unlink(tmp);
        if (iso_err) snprintf(err, errlen, "cloud-init seed '%s': libisofs: %s", path, iso_error_to_msg(iso_err));
        else snprintf(err, errlen, "cloud-init seed '%s': %s: %s", path, step, strerror(-r));
        return r;
    }
    vm_store_sync_dir_of(path); /* the rename itself survives a crash */
    return 0;
}
