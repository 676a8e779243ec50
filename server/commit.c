/* server/commit: the group commit (architecture.md, "The write path").
 *
 * Requests that change the store (publishes, subscription changes) are checked at once and then
 * wait, paused, in the open batch (s->pending). At the end of a loop pass the open batch becomes
 * the job of the committer thread, which writes it in one LMDB transaction and syncs it to disk,
 * while the loop goes on serving and filling the next batch. When the job is done the loop hands
 * the next job to the committer at once if one is waiting (so the thread does not sit idle while
 * the loop answers), then answers every request of the finished job (never before its data is on
 * disk), applies its subscription changes and hands its new events to delivery. So the fsync never
 * blocks the loop, and the batch grows with the load: everything that arrives during one commit is
 * committed by the next.
 *
 * The committer thread only ever calls store_commit; everything else stays on the loop. Jobs run
 * one at a time and in order, so sequence numbers, dedupe and the dispatch cursor see the same
 * order as with commits on the loop. There are two job slots: the finished job's results stay in
 * one while the committer works on the other. The next job's contents were all gathered before the
 * finished one completed, so starting it first changes none of them; what finishing a publish-only
 * job adds (cursor moves from dispatching its events) goes into the open batch, in order, and rides
 * the job after (a cursor is durable one job later, never ahead of its events or retries). A job
 * with subscription changes is still finished before the next starts (see job_done). The done event
 * has the loop's high priority (main.c): it runs before the connection callbacks of the pass in
 * which it fires. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "filter/util.h"
#include "server/audit.h"
#include "server/log.h"
#include "server/server.h"
#include "server/subs.h"
#include "webhook/webhook.h"

struct srv_committer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready; /* a job was handed over */
    int quit;
    int efd; /* the thread signals "done" here; the loop reads it */
    struct event *done_ev;
    store_t *store;

    /* Two job slots: the thread owns jobs[cur] from hand-over until "done"; the loop then starts
     * the next job in the other slot before it finishes this one. */
    struct srv_job {
        store_batch_t *subs;  /* subscription ops */
        store_batch_t *batch; /* delivery ops (a failed one is tried again first, in the next) */
        store_event_in_t *ins;
        size_t n_ins, cap_ins;
        store_result_t *res;
        size_t cap_res;
        int subs_rc, rc;
        char subs_err[256], err[256];
        int committed;      /* store_commit ran for this job */
        double commit_secs; /* how long it took (write and sync), for the metrics */
    } jobs[2];
    int cur;             /* the slot of the job handed over last */
    struct srv_job *job; /* the thread's job (set under mu with ready) */
    srv_pending_t *done; /* the finished job's requests while they are answered */
    size_t cap_done;

    /* Test hook (test/blackbox/test_crash_loop.py), read once at start: with the environment
     * variable HENDELSE_TEST_COMMIT_DELAY_MS=N the committer sleeps N ms inside every job that
     * holds events, after store_commit returned (the events are durable, their publishers not yet
     * answered), or before it when HENDELSE_TEST_COMMIT_DELAY_AT=before (nothing of the job written
     * yet), so that a test can kill -9 the process in the middle of a commit. Unset in production.
     */
    int test_delay_ms;
    int test_delay_before;
};

static void test_delay(const srv_committer_t *c)
{
    struct timespec ts = {c->test_delay_ms / 1000, (long)(c->test_delay_ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap ? *cap : 256;
    void *np;
    while (c < need)
        c *= 2;
    if (c == *cap) return 0;
    np = realloc(*p, c * elem);
    if (!np) return -1;
    *p = np;
    *cap = c;
    return 0;
}

/* ---- the thread ---- */

static void *committer_main(void *arg)
{
    srv_committer_t *c = arg;
    uint64_t one = 1;
    for (;;) {
        struct srv_job *j;
        pthread_mutex_lock(&c->mu);
        while (!c->ready && !c->quit)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->ready) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        c->ready = 0;
        j = c->job;
        pthread_mutex_unlock(&c->mu);

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        j->committed = 0;
        j->subs_rc = 0;
        if (!store_batch_empty(j->subs)) {
            j->committed = 1;
            j->subs_rc = store_commit(c->store, j->subs, NULL, 0, NULL);
            if (j->subs_rc) snprintf(j->subs_err, sizeof j->subs_err, "%s", store_last_error(NULL));
        }
        j->rc = 0;
        if (j->n_ins || !store_batch_empty(j->batch)) {
            j->committed = 1;
            if (c->test_delay_ms && c->test_delay_before && j->n_ins) test_delay(c);
            j->rc = store_commit(c->store, j->batch, j->ins, j->n_ins, j->res);
            if (j->rc) snprintf(j->err, sizeof j->err, "%s", store_last_error(NULL));
            if (c->test_delay_ms && !c->test_delay_before && j->n_ins) test_delay(c);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        j->commit_secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        /* the write of the eventfd publishes the job's results to the loop thread */
        while (write(c->efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}

/* ---- the loop's side ---- */

static void dispatch(srv_t *s, uint64_t seq, int64_t stored_us, const filter_event_t *ev)
{
    size_t n = srv_subs_match(s, ev);
    if (webhook_dispatch_at(s->webhook, seq, stored_us, ev->json, ev->json_len,
                            srv_subs_match_ids(s), n) != 0)
        srv_log(SRV_LOG_ERROR, "deliver", "out of memory dispatching seq=%llu",
                (unsigned long long)seq);
}

static void reply_group(srv_t *s, srv_pending_t *p, size_t avail)
{
    /* a group (a batch) answers with its worst outcome */
    store_res_t worst = STORE_RES_STORED;
    (void)s;
    for (size_t j = 0; j < (p->group ? p->group : 1) && j < avail; j++) {
        store_res_t r = p[j].res->res;
        if (r == STORE_RES_ERROR || (r == STORE_RES_FULL && worst != STORE_RES_ERROR)) worst = r;
    }
    switch (worst) {
    case STORE_RES_STORED:
    case STORE_RES_DUP:
        if (p->created_id[0]) {
            if (p->location)
                evhtp_headers_add_header(p->req->headers_out,
                                         evhtp_header_new("Location", p->location, 0, 1));
            srv_reply_text(p->req, 201, "application/json; charset=utf-8", p->created_id,
                           strlen(p->created_id));
        } else {
            srv_reply_empty(p->req, 200);
        }
        break;
    case STORE_RES_FULL:
        srv_reply_problem(p->req, 507, "Insufficient Storage",
                          "The event store is full; the event was not stored.");
        break;
    default:
        srv_reply_problem(p->req, 500, "Internal Server Error", "The event could not be stored.");
        break;
    }
}

/* The job is done: answer, apply and dispatch, in the order the requests came. Its requests were
 * moved aside (c->done, detached) by job_done. */
static void finish_job(srv_t *s, struct srv_job *j, srv_pending_t *reqs, size_t n)
{
    s->n_batches++;
    srv_metrics_commit(s, j->n_ins, j->committed, j->commit_secs);
    if (j->subs_rc)
        srv_log(SRV_LOG_ERROR, "subs", "subscription commit failed error=\"%s\" detail=\"%s\"",
                store_strerror(j->subs_rc), j->subs_err);
    /* A failed subscription batch is dropped: its requests are answered with an error below, and
     * nothing of it may be written later behind their backs. */
    store_batch_clear(j->subs);
    if (j->rc == STORE_EMAPFULL)
        srv_log(SRV_LOG_WARN, "store", "store is full: publishes refused until space is freed");
    else if (j->rc)
        srv_log(SRV_LOG_ERROR, "store", "commit failed events=%zu error=\"%s\" detail=\"%s\"",
                j->n_ins, store_strerror(j->rc), j->err);

    srv_subs_finish(s, reqs, n, j->subs_rc);

    for (size_t i = 0, k = 0; i < n; i++) {
        srv_pending_t *p = &reqs[i];
        if (p->kind != SRV_PENDING_EVENT) continue;
        p->res = &j->res[k];
        if ((unsigned)p->res->res < SRV_PUB_REJECTED) s->metrics.published[p->res->res]++;
        if (p->res->res == STORE_RES_STORED) {
            s->n_published++;
            dispatch(s, p->res->seq, j->ins[k].stored_us, p->ev);
        }
        k++;
        if (p->res->res == STORE_RES_DUP) s->n_duplicates++;
    }
    for (size_t i = 0; i < n; i++) {
        srv_pending_t *p = &reqs[i];
        if (p->kind != SRV_PENDING_EVENT) continue;
        if (p->req) reply_group(s, p, n - i);
        filter_event_free(p->ev);
        free(p->location);
        free(p->who);
    }
}

static int has_work(const srv_t *s)
{
    const srv_committer_t *c = s->committer;
    return s->n_pending || !store_batch_empty(s->batch) || !srv_subs_batch_empty((srv_t *)s) ||
           !store_batch_empty(c->jobs[c->cur].batch);
}

/* Hands the open batch to the committer thread, in the slot after the last job's. */
static void start_job(srv_t *s)
{
    srv_committer_t *c = s->committer;
    struct srv_job *last, *j;
    srv_pending_t *t;
    size_t n = s->n_pending, n_ev = 0, tcap;
    int64_t now;

    if (s->job_busy || !has_work(s)) return;
    last = &c->jobs[c->cur];
    j = &c->jobs[c->cur ^ 1];
    now = srv_now_us(); /* one stored time for the whole batch: they are stored together */
    if (grow((void **)&j->ins, &j->cap_ins, n, sizeof *j->ins) != 0 ||
        grow((void **)&j->res, &j->cap_res, n, sizeof *j->res) != 0) {
        srv_log(SRV_LOG_ERROR, "store", "out of memory starting a commit");
        return; /* tried again at the end of the next pass */
    }
    for (size_t i = 0; i < n; i++) {
        const filter_event_t *ev = s->pending[i].ev;
        store_event_in_t *in;
        if (s->pending[i].kind != SRV_PENDING_EVENT) continue;
        in = &j->ins[n_ev++];
        in->id = ev->id;
        in->source = ev->source;
        in->type = ev->type;
        in->subject = ev->subject;
        in->alternativesubject = ev->alternativesubject;
        in->resource = ev->resource;
        in->json = ev->json;
        in->json_len = ev->json_len;
        in->stored_us = now;
    }
    j->n_ins = n_ev;
    /* the open requests become the job's; the job's (empty) array becomes the open one */
    t = s->inflight;
    s->inflight = s->pending;
    s->pending = t;
    tcap = s->cap_inflight;
    s->cap_inflight = s->cap_pending;
    s->cap_pending = tcap;
    s->n_inflight = n;
    s->n_pending = 0;
    for (size_t i = 0; i < n; i++)
        if (s->inflight[i].rctx) s->inflight[i].rctx->inflight = 1;
    /* delivery ops: a batch that failed last time is tried again first, alone, before newer ops
     * (a cursor must never become durable ahead of the retries it depends on) */
    HND_CHECK(store_batch_empty(j->batch));
    if (!store_batch_empty(last->batch)) {
        store_batch_t *b = j->batch;
        j->batch = last->batch;
        last->batch = b;
    } else {
        store_batch_t *b = j->batch;
        j->batch = s->batch;
        s->batch = b;
    }
    srv_subs_swap_batch(s, &j->subs);
    /* the publish audit records ride the very batch committed with their events */
    srv_audit_publishes(s, j->batch, s->inflight, n);

    s->job_busy = 1;
    pthread_mutex_lock(&c->mu);
    c->cur ^= 1;
    c->job = j;
    c->ready = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void drain_efd(srv_committer_t *c)
{
    uint64_t v;
    while (read(c->efd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}

/* The committer signalled: its job (jobs[cur]) is done. The next job goes to the thread first, then
 * the finished one is answered, applied and dispatched. */
static void job_done(srv_t *s)
{
    srv_committer_t *c = s->committer;
    struct srv_job *j = &c->jobs[c->cur];
    srv_pending_t *t;
    size_t n = s->n_inflight, tcap;
    int subs = 0;

    drain_efd(c);
    s->job_busy = 0;
    /* Detach the entries before answering: a reply may free a connection, whose fini hook then
     * looks for its slot. They move aside, so that the next job's requests can take s->inflight. */
    for (size_t i = 0; i < n; i++) {
        if (s->inflight[i].rctx) s->inflight[i].rctx->pending = -1;
        if (s->inflight[i].kind != SRV_PENDING_EVENT) subs = 1;
    }
    t = c->done;
    c->done = s->inflight;
    s->inflight = t;
    tcap = c->cap_done;
    c->cap_done = s->cap_inflight;
    s->cap_inflight = tcap;
    s->n_inflight = 0;
    /* A job with subscription changes is finished first, as when jobs ran strictly one after the
     * other: finishing a delete queues the cleanup of the subscription's retry records into the
     * open delivery batch, and that cleanup must commit in the same job as the records that sit
     * there now (started first, the next job would take the records and leave the cleanup to the
     * one after). Publish-only jobs (the common case) start the next job first. */
    if (subs) finish_job(s, j, c->done, n);
    /* what arrived while the job ran goes at once: no need to wait for the end of a pass */
    start_job(s);
    if (!subs) finish_job(s, j, c->done, n);
}

static void on_job_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_done(arg);
}

static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_job(arg);
}

void srv_arm_commit(srv_t *s)
{
    /* activating an event that is already active only merges flags: safe to call often */
    event_active(s->commit_ev, 0, 0);
}

static int grow_pending(srv_t *s)
{
    return grow((void **)&s->pending, &s->cap_pending, s->n_pending + 1, sizeof *s->pending);
}

srv_pending_t *srv_pending_add(srv_t *s, evhtp_request_t *req, srv_req_t *rctx)
{
    srv_pending_t *p;
    if (s->n_pending == s->cap_pending && grow_pending(s) != 0) return NULL;
    p = &s->pending[s->n_pending];
    memset(p, 0, sizeof *p);
    p->req = req;
    p->rctx = rctx;
    if (rctx) {
        rctx->pending = (long)s->n_pending;
        rctx->inflight = 0;
        rctx->paused = 1;
    }
    s->n_pending++;
    srv_arm_commit(s);
    if (req) srv_request_pause(req);
    return p;
}

void srv_publish_forget(srv_t *s, srv_req_t *rctx)
{
    /* The entry stays: what it carries was accepted for storing, only the answer has no one to go
     * to (the client may retry; dedupe makes that safe). */
    srv_pending_t *arr = rctx->inflight ? s->inflight : s->pending;
    size_t n = rctx->inflight ? s->n_inflight : s->n_pending;
    if (rctx->pending >= 0 && (size_t)rctx->pending < n && arr[rctx->pending].rctx == rctx) {
        arr[rctx->pending].req = NULL;
        arr[rctx->pending].rctx = NULL;
    }
    rctx->pending = -1;
}

/* Waits for the committer to finish the job in hand, on the calling thread (which starts the next
 * job, if one is waiting, before it answers the finished one). */
static void wait_job(srv_t *s)
{
    struct pollfd pfd = {s->committer->efd, POLLIN, 0};
    if (!s->job_busy) return;
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
        ;
    job_done(s);
}

void srv_commit_now(srv_t *s)
{
    if (!s->committer) return;
    /* at shutdown: everything accepted is committed and answered before the store closes */
    for (int rounds = 0; rounds < 64; rounds++) {
        start_job(s);
        if (!s->job_busy) break; /* nothing to do (or could not start: out of memory) */
        wait_job(s);
    }
    wait_job(s);
}

int srv_commit_init(srv_t *s)
{
    srv_committer_t *c = calloc(1, sizeof *c);
    if (!c) return -1;
    s->committer = c;
    c->store = s->store;
    {
        const char *d = getenv("HENDELSE_TEST_COMMIT_DELAY_MS"), *at;
        if (d && *d) {
            long ms = strtol(d, NULL, 10);
            c->test_delay_ms = ms > 0 && ms <= 60000 ? (int)ms : 0;
            at = getenv("HENDELSE_TEST_COMMIT_DELAY_AT");
            c->test_delay_before = at && strcmp(at, "before") == 0;
            if (c->test_delay_ms)
                srv_log(SRV_LOG_WARN, "store", "test hook: every commit waits %d ms %s writing",
                        c->test_delay_ms, c->test_delay_before ? "before" : "after");
        }
    }
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    for (int i = 0; i < 2; i++) {
        c->jobs[i].subs = store_batch_new();
        c->jobs[i].batch = store_batch_new();
        if (!c->jobs[i].subs || !c->jobs[i].batch) return -1;
    }
    s->commit_ev = event_new(s->base, -1, 0, on_commit, s);
    if (c->efd < 0 || !s->commit_ev) return -1;
    c->done_ev = event_new(s->base, c->efd, EV_READ | EV_PERSIST, on_job_done, s);
    /* the done event before the connections' (the base has two priorities, main.c) */
    if (!c->done_ev || event_priority_set(c->done_ev, 0) != 0 || event_add(c->done_ev, NULL) != 0)
        return -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, committer_main, c) != 0) return -1;
    return 0;
}

void srv_commit_fini(srv_t *s)
{
    srv_committer_t *c = s->committer;
    if (!c) return;
    srv_commit_now(s);
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    if (c->done_ev) event_free(c->done_ev);
    if (c->efd >= 0) close(c->efd);
    for (int i = 0; i < 2; i++) {
        store_batch_free(c->jobs[i].subs);
        store_batch_free(c->jobs[i].batch);
        free(c->jobs[i].ins);
        free(c->jobs[i].res);
    }
    free(c->done);
    free(c);
    s->committer = NULL;
    if (s->commit_ev) event_free(s->commit_ev);
    s->commit_ev = NULL;
}

/* ---- start: re-dispatch what the last run may not have delivered ---- */

static int redispatch_one(void *ctx, const store_event_t *sev)
{
    srv_t *s = ctx;
    filter_event_t *ev;
    char msg[256];
    /* most events match no subscription: find that out from the index alone, without parsing */
    if (!srv_subs_may_match(s, sev->resource, sev->subject, sev->type, sev->source)) {
        webhook_dispatch(s->webhook, sev->seq, sev->json, sev->json_len, NULL, 0);
        return STORE_SCAN_CONTINUE;
    }
    /* the stored JSON is canonical and valid: parse it back into the model for matching */
    if (filter_event_parse(sev->json, sev->json_len, NULL, &ev, msg, sizeof msg) != 0) {
        srv_log(SRV_LOG_ERROR, "deliver", "stored event does not parse seq=%llu error=\"%s\"",
                (unsigned long long)sev->seq, msg);
        webhook_dispatch(s->webhook, sev->seq, sev->json, sev->json_len, NULL, 0);
        return STORE_SCAN_CONTINUE;
    }
    dispatch(s, sev->seq, sev->stored_us, ev);
    filter_event_free(ev);
    return STORE_SCAN_CONTINUE;
}

int srv_deliver_start(srv_t *s)
{
    uint64_t cursor = 0;
    int rc = webhook_start(s->webhook, &cursor);
    if (rc != 0) {
        srv_log(SRV_LOG_ERROR, "deliver", "cannot load delivery state error=\"%s\"",
                webhook_strerror(rc));
        return -1;
    }
    /* Every event after the durable cursor may have deliveries that were neither done nor
     * recorded when the process last stopped: deliver them again (duplicates, never losses). */
    rc = store_scan_all(s->store, cursor, 0, redispatch_one, s, NULL);
    if (rc != 0) {
        srv_log(SRV_LOG_ERROR, "deliver", "cannot re-dispatch events error=\"%s\"",
                store_strerror(rc));
        return -1;
    }
    if (store_last_seq(s->store) > cursor)
        srv_log(SRV_LOG_INFO, "deliver", "re-dispatched events after cursor=%llu last=%llu",
                (unsigned long long)cursor, (unsigned long long)store_last_seq(s->store));
    return 0;
}
