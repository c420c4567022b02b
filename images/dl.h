/* images/dl.h - libarchive, loaded when an image is imported or unpacked
 * rather than at every start of the program (each
 * shared library costs every `run` its mappings and relocations).  A .c file
 * that includes this header calls it by its usual names.  (libcurl, for
 * registry pulls, is util/curl.h's.) */
#ifndef IMAGES_DL_H
#define IMAGES_DL_H

#include <archive.h>
#include <archive_entry.h>

#include "util/error.h"

#define IMAGES_DL_FUNCTIONS(X) \
	X(archive_entry_filetype) \
	X(archive_entry_hardlink) \
	X(archive_entry_pathname) \
	X(archive_entry_perm) \
	X(archive_entry_rdevmajor) \
	X(archive_entry_rdevminor) \
	X(archive_entry_set_hardlink) \
	X(archive_entry_set_pathname) \
	X(archive_entry_set_perm) \
	X(archive_entry_size) \
	X(archive_entry_symlink) \
	X(archive_error_string) \
	X(archive_read_data) \
	X(archive_read_data_block) \
	X(archive_read_free) \
	X(archive_read_new) \
	X(archive_read_next_header) \
	X(archive_read_open_filename) \
	X(archive_read_support_filter_bzip2) \
	X(archive_read_support_filter_gzip) \
	X(archive_read_support_filter_xz) \
	X(archive_read_support_filter_zstd) \
	X(archive_read_support_format_tar) \
	X(archive_write_close) \
	X(archive_write_data_block) \
	X(archive_write_disk_new) \
	X(archive_write_disk_set_options) \
	X(archive_write_finish_entry) \
	X(archive_write_free) \
	X(archive_write_header) \

typedef struct images_dl_fns {
#define IMAGES_DL_FIELD(f) __typeof__(f) *f;
	IMAGES_DL_FUNCTIONS(IMAGES_DL_FIELD)
#undef IMAGES_DL_FIELD
} images_dl_fns;

/* The table, filled once by images_dl_load (then read-only). */
extern images_dl_fns images_dl_table;

/* Loads libarchive (dlopen) and fills the table; safe to call from any thread,
 * any number of times: the first call does the work.  CBL_EIO naming the
 * library when it cannot be loaded. */
int images_dl_load(cbl_error **err);

/* the usual names call through the table (not in the loader itself) */
#ifndef IMAGES_DL_LOADER
#undef archive_entry_filetype
#define archive_entry_filetype (images_dl_table.archive_entry_filetype)
#undef archive_entry_hardlink
#define archive_entry_hardlink (images_dl_table.archive_entry_hardlink)
#undef archive_entry_pathname
#define archive_entry_pathname (images_dl_table.archive_entry_pathname)
#undef archive_entry_perm
#define archive_entry_perm (images_dl_table.archive_entry_perm)
#undef archive_entry_rdevmajor
#define archive_entry_rdevmajor (images_dl_table.archive_entry_rdevmajor)
#undef archive_entry_rdevminor
#define archive_entry_rdevminor (images_dl_table.archive_entry_rdevminor)
#undef archive_entry_set_hardlink
#define archive_entry_set_hardlink (images_dl_table.archive_entry_set_hardlink)
#undef archive_entry_set_pathname
#define archive_entry_set_pathname (images_dl_table.archive_entry_set_pathname)
#undef archive_entry_set_perm
#define archive_entry_set_perm (images_dl_table.archive_entry_set_perm)
#undef archive_entry_size
#define archive_entry_size (images_dl_table.archive_entry_size)
#undef archive_entry_symlink
#define archive_entry_symlink (images_dl_table.archive_entry_symlink)
#undef archive_error_string
#define archive_error_string (images_dl_table.archive_error_string)
#undef archive_read_data
#define archive_read_data (images_dl_table.archive_read_data)
#undef archive_read_data_block
#define archive_read_data_block (images_dl_table.archive_read_data_block)
#undef archive_read_free
#define archive_read_free (images_dl_table.archive_read_free)
#undef archive_read_new
#define archive_read_new (images_dl_table.archive_read_new)
#undef archive_read_next_header
#define archive_read_next_header (images_dl_table.archive_read_next_header)
#undef archive_read_open_filename
#define archive_read_open_filename (images_dl_table.archive_read_open_filename)
#undef archive_read_support_filter_bzip2
#define archive_read_support_filter_bzip2 (images_dl_table.archive_read_support_filter_bzip2)
#undef archive_read_support_filter_gzip
#define archive_read_support_filter_gzip (images_dl_table.archive_read_support_filter_gzip)
#undef archive_read_support_filter_xz
#define archive_read_support_filter_xz (images_dl_table.archive_read_support_filter_xz)
#undef archive_read_support_filter_zstd
#define archive_read_support_filter_zstd (images_dl_table.archive_read_support_filter_zstd)
#undef archive_read_support_format_tar
#define archive_read_support_format_tar (images_dl_table.archive_read_support_format_tar)
#undef archive_write_close
#define archive_write_close (images_dl_table.archive_write_close)
#undef archive_write_data_block
#define archive_write_data_block (images_dl_table.archive_write_data_block)
#undef archive_write_disk_new
#define archive_write_disk_new (images_dl_table.archive_write_disk_new)
#undef archive_write_disk_set_options
#define archive_write_disk_set_options (images_dl_table.archive_write_disk_set_options)
#undef archive_write_finish_entry
#define archive_write_finish_entry (images_dl_table.archive_write_finish_entry)
#undef archive_write_free
#define archive_write_free (images_dl_table.archive_write_free)
#undef archive_write_header
#define archive_write_header (images_dl_table.archive_write_header)
#endif /* IMAGES_DL_LOADER */

#endif
