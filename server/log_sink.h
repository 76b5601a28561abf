/*
 * log_sink.h — one log destination (the error log or the audit log) and the thread that writes
 * to it, so that no other thread ever waits on a log write. Internal to the log module: the
 * rest of the server uses log.h.
 *
 * Lines are queued as entries up to a byte bound; a full queue refuses new ones. The writer
 * takes entries in order and writes them in batches. A pipe, FIFO or terminal gets a
 * non-blocking descriptor of its own (reopened through /proc/self/fd for an inherited standard
 * output or error, so the shell's descriptor keeps its flags) and batches of at most PIPE_BUF
 * bytes, which a pipe takes whole or not at all: the writer waits in poll(), never in write(),
 * and a stalled reader costs queued lines, not a blocked thread. A socket is written with
 * MSG_DONTWAIT. A regular file is written with plain write(2): it has no reader to stall on, and
 * a full disk fails at once (ENOSPC). A line cut short by a failed write is closed with a newline
 * before the next one, so readers never see two lines run together.
 *
 * An entry with a waiter (done set) is completed exactly once, on the writer thread: WRITTEN
 * when write(2) has accepted its last byte, FAILED when the sink could not write it, unless
 * the waiter abandoned it first. An entry without waiter that fails is retried with back-off
 * when marked retry, otherwise dropped. A write error puts the sink in the failing state until
 * a write succeeds again (or the target is replaced).
 */
#ifndef KESC_SERVER_LOG_SINK_H
#define KESC_SERVER_LOG_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_target_kind {
	LOG_TARGET_FILE,     /* regular file: blocking writes */
	LOG_TARGET_STREAM,   /* pipe, FIFO, terminal, character device: non-blocking, own fd */
	LOG_TARGET_SOCKET,   /* inherited socket (journald): send(MSG_DONTWAIT) */
	LOG_TARGET_BLOCKING, /* could not be made non-blocking: blocking writes */
};

struct log_target {
	int fd;
	bool owned; /* closed when replaced */
	enum log_target_kind kind;
	char name[256]; /* "standard output" or the path, for messages */
};

/* Opens path for appending (created 0600, never through a symbolic link), or, with path NULL
 * or "/dev/stdout" / "/dev/stderr", uses std_fd (1 or 2). -1 with the reason in err. */
int log_target_open(const char *path, int std_fd, struct log_target *t, char *err, size_t errlen);
void log_target_close(struct log_target *t);

enum log_entry_state {
	LOG_ENTRY_QUEUED,
	LOG_ENTRY_WRITING,
	LOG_ENTRY_WRITTEN,
	LOG_ENTRY_FAILED,
	LOG_ENTRY_WITHDRAWN,
};

struct log_entry {
	struct log_entry *next;
	/* With a waiter: called once, on the writer thread with the sink's lock held, when the
	 * entry is WRITTEN or FAILED. It must not block or call into the sink. */
	void (*done)(void *arg);
	void *arg;
	bool retry;         /* without waiter: keep and retry when a write fails */
	const char *tenant; /* the caller's: whose subscribers see the line (log.c) */
	/* Private to log_sink.c. */
	bool internal;    /* a newline ending a cut line, or a drop notice */
	bool failed_once; /* a retry entry whose write failed (counted once) */
	bool abandoned;   /* its waiter gave up */
	enum log_entry_state state;
	int refs;
	uint64_t notice_count; /* a drop notice: how many lines it reports */
	size_t len;
	char data[];
};

/* A new entry holding a copy of data (its line, '\n' included); NULL when out of memory. */
struct log_entry *log_entry_new(const char *data, size_t len);
void log_entry_free(struct log_entry *e);

struct log_sink;

enum log_loss { LOG_LOSS_ERROR, LOG_LOSS_TIMEOUT, LOG_LOSS_QUEUE_FULL };

/* Callbacks; each may be NULL. They run without the sink's lock, on the writer thread, except
 * written and lost, which also run on a thread that submitted (a line written inline) or
 * abandoned an entry. */
struct log_sink_hooks {
	void (*written)(size_t entries);
	/* Entries not written (for a retry entry: its first failed write, though it is kept). */
	void (*lost)(size_t entries, enum log_loss why);
	void (*failed)(const char *target, int err);            /* the sink starts failing */
	void (*recovered)(const char *target, uint64_t failed); /* a write succeeded again */
	/* A line reporting `lost` dropped lines, written before the next line after drops
	 * (the error log has one; the audit log must not get foreign lines). */
	int (*drop_notice)(uint64_t lost, char *out, size_t n);
	void (*tick)(void); /* about once a second */
};

/* Starts the writer thread, with no target (entries are refused until one is set). */
struct log_sink *log_sink_start(size_t max_bytes, const struct log_sink_hooks *hooks);
/* Replaces the target (taking it over; NULL = none) and clears the failing state. */
void log_sink_set_target(struct log_sink *s, const struct log_target *t);
bool log_sink_has_target(struct log_sink *s);
/* Whether the last write failed, or an entry was abandoned because it waited too long, and no
 * write has succeeded since. */
bool log_sink_failing(struct log_sink *s);

/* Hands e over. 1: written already, by the calling thread (only to a pipe, terminal or
 * socket with nothing queued ahead, whose write cannot block); e is freed and done is not
 * called. 0: queued; the sink owns e, and with done set the waiter keeps a reference until
 * log_sink_finish or log_sink_abandon. -1: the queue is full or there is no target; e was not
 * taken. */
int log_sink_submit(struct log_sink *s, struct log_entry *e);
/* After done was called: the outcome (WRITTEN or FAILED); releases the waiter's reference. */
enum log_entry_state log_sink_finish(struct log_sink *s, struct log_entry *e);
/* The waiter gives up. false: done will never be called and the waiter's reference is gone
 * (a queued entry is withdrawn and never written; one being written may still be). true: done
 * has been called already; the waiter must still call log_sink_finish. With timed_out, the
 * sink counts as failing and the loss is reported as a timeout. */
bool log_sink_abandon(struct log_sink *s, struct log_entry *e, bool timed_out);

/* Waits until everything queued before the call is written, the sink fails or stalls, or
 * timeout_ms passed. */
void log_sink_flush(struct log_sink *s, int timeout_ms);
/* Writes what it can within timeout_ms, then stops the thread and frees the sink (a thread
 * stuck in a blocking write is left behind and the sink with it). */
void log_sink_stop(struct log_sink *s, int timeout_ms);

#endif
