/*
 * A Kafka-protocol test broker: librdkafka's mock cluster, driven by line commands on stdin.
 *
 * Prints "BOOTSTRAP host:port,..." and "READY", then answers every command line with exactly one
 * "OK ..." or "ERR ..." line. Exits 0 on "quit", on stdin EOF (the test process died, so its pipe
 * closed) and on SIGTERM/SIGINT/SIGHUP, so no broker outlives the tests that started it.
 *
 * Commands (ids are broker ids, 1..N; -1 means every broker where librdkafka allows it):
 *   topic <name> <partitions> [replication]
 *   down <brokerId> | up <brokerId>
 *   err <apiKey> <count> <errcode>...          cluster-wide, next <count> requests of <apiKey> fail
 *   broker-err <brokerId> <apiKey> <count> <errcode> [rtt_ms]
 *   clear-err <apiKey>
 *   rtt <brokerId> <ms>
 *   leader <topic> <partition> <brokerId>
 *   coordinator <group|transaction> <key> <brokerId>
 *   quit
 *
 * Build: cc -O2 -o mock-cluster mock_cluster.c -lrdkafka  (scripts/build-mock-broker.sh does this)
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_ARGS 64
#define LINE_MAX_LEN 4096

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
        (void)sig;
        stop_requested = 1;
}

/* One reply line per command; the test helper matches replies to commands by order. */
static void reply(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

static void reply_err(rd_kafka_resp_err_t err) {
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                reply("OK");
        else
                reply("ERR %s: %s", rd_kafka_err2name(err), rd_kafka_err2str(err));
}

/* Strict integer parse: the whole token must be a number in [lo, hi]. */
static int parse_int(const char *s, long lo, long hi, long *out) {
        char *end;
        long v;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
                return -1;
        *out = v;
        return 0;
}

#define NEED_INT(idx, lo, hi, var)                                             \
        long var;                                                              \
        if (parse_int(argv[idx], lo, hi, &var) != 0) {                         \
                reply("ERR bad number '%s' for " #var, argv[idx]);             \
                return;                                                        \
        }

#define NEED_ARGS(min, max, usage)                                             \
        if (argc < (min) || argc > (max)) {                                    \
                reply("ERR usage: %s", usage);                                 \
                return;                                                        \
        }

static void cmd_err(rd_kafka_mock_cluster_t *mc, int argc, char **argv) {
        rd_kafka_resp_err_t errs[MAX_ARGS];
        int i;
        NEED_ARGS(4, MAX_ARGS, "err <apiKey> <count> <errcode>...");
        NEED_INT(1, 0, SHRT_MAX, api_key);
        NEED_INT(2, 1, MAX_ARGS, count);
        if (count != argc - 3) {
                reply("ERR count %ld does not match %d error codes", count, argc - 3);
                return;
        }
        for (i = 0; i < count; i++) {
                NEED_INT(3 + i, -200, SHRT_MAX, code);
                errs[i] = (rd_kafka_resp_err_t)code;
        }
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)api_key, (size_t)count, errs);
        reply("OK");
}

static void cmd_broker_err(rd_kafka_mock_cluster_t *mc, int argc, char **argv) {
        long rtt_ms = 0, i;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        NEED_ARGS(5, 6, "broker-err <brokerId> <apiKey> <count> <errcode> [rtt_ms]");
        NEED_INT(1, 0, INT_MAX, broker);
        NEED_INT(2, 0, SHRT_MAX, api_key);
        NEED_INT(3, 1, 100000, count);
        NEED_INT(4, -200, SHRT_MAX, code);
        if (argc == 6 && parse_int(argv[5], 0, INT_MAX, &rtt_ms) != 0) {
                reply("ERR bad number '%s' for rtt_ms", argv[5]);
                return;
        }
        /* The API is variadic over (err, rtt) tuples, so push identical entries one at a time. */
        for (i = 0; i < count && !err; i++)
                err = rd_kafka_mock_broker_push_request_error_rtts(
                    mc, (int32_t)broker, (int16_t)api_key, 1, (rd_kafka_resp_err_t)code, (int)rtt_ms);
        reply_err(err);
}

static void dispatch(rd_kafka_mock_cluster_t *mc, int argc, char **argv, int *quit) {
        const char *cmd = argv[0];

        if (!strcmp(cmd, "topic")) {
                long repl = 1;
                NEED_ARGS(3, 4, "topic <name> <partitions> [replication]");
                NEED_INT(2, 1, 100000, partitions);
                if (argc == 4 && parse_int(argv[3], 1, 1000, &repl) != 0) {
                        reply("ERR bad number '%s' for replication", argv[3]);
                        return;
                }
                reply_err(rd_kafka_mock_topic_create(mc, argv[1], (int)partitions, (int)repl));
        } else if (!strcmp(cmd, "down") || !strcmp(cmd, "up")) {
                NEED_ARGS(2, 2, "down|up <brokerId>");
                NEED_INT(1, -1, INT_MAX, broker);
                reply_err(cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)broker)
                                        : rd_kafka_mock_broker_set_up(mc, (int32_t)broker));
        } else if (!strcmp(cmd, "err")) {
                cmd_err(mc, argc, argv);
        } else if (!strcmp(cmd, "broker-err")) {
                cmd_broker_err(mc, argc, argv);
        } else if (!strcmp(cmd, "clear-err")) {
                NEED_ARGS(2, 2, "clear-err <apiKey>");
                NEED_INT(1, 0, SHRT_MAX, api_key);
                rd_kafka_mock_clear_request_errors(mc, (int16_t)api_key);
                reply("OK");
        } else if (!strcmp(cmd, "rtt")) {
                NEED_ARGS(3, 3, "rtt <brokerId> <ms>");
                NEED_INT(1, -1, INT_MAX, broker);
                NEED_INT(2, 0, INT_MAX, ms);
                reply_err(rd_kafka_mock_broker_set_rtt(mc, (int32_t)broker, (int)ms));
        } else if (!strcmp(cmd, "leader")) {
                NEED_ARGS(4, 4, "leader <topic> <partition> <brokerId>");
                NEED_INT(2, 0, INT_MAX, partition);
                NEED_INT(3, -1, INT_MAX, broker);
                reply_err(rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)partition,
                                                             (int32_t)broker));
        } else if (!strcmp(cmd, "coordinator")) {
                NEED_ARGS(4, 4, "coordinator <group|transaction> <key> <brokerId>");
                NEED_INT(3, 0, INT_MAX, broker);
                reply_err(rd_kafka_mock_coordinator_set(mc, argv[1], argv[2], (int32_t)broker));
        } else if (!strcmp(cmd, "quit")) {
                reply("OK bye");
                *quit = 1;
        } else {
                reply("ERR unknown command '%s'", cmd);
        }
}

/* The mock cluster needs an rd_kafka_t for bookkeeping; it is never used to produce. */
static rd_kafka_t *new_handle(void) {
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        /* Without this the mock's small replies sit in Nagle's buffer for ~40 ms each. */
        if (rd_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof(errstr)) !=
                RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "mock-cluster: conf: %s\n", errstr);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "mock-cluster: rd_kafka_new: %s\n", errstr);
                rd_kafka_conf_destroy(conf); /* rd_kafka_new only takes ownership on success */
        }
        return rk;
}

static int install_signals(void) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: a blocked fgets must return EINTR so we can exit */
        if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL) ||
            sigaction(SIGHUP, &sa, NULL))
                return -1;
        /* A vanished reader must not kill us mid-cleanup; writes just fail with EPIPE. */
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

int main(int argc, char **argv) {
        long brokers = 1;
        char line[LINE_MAX_LEN];
        int quit = 0;
        sigset_t block, old;

        if (argc > 2 || (argc == 2 && parse_int(argv[1], 1, 64, &brokers) != 0)) {
                fprintf(stderr, "usage: %s [broker_count 1..64]\n", argv[0]);
                return 2;
        }
        if (install_signals() != 0) {
                perror("mock-cluster: sigaction");
                return 1;
        }

        /* Threads inherit the signal mask: block while librdkafka starts its threads so every
         * termination signal lands on this thread and interrupts its read. */
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &block, &old);

        rd_kafka_t *rk = new_handle();
        rd_kafka_mock_cluster_t *mc = rk ? rd_kafka_mock_cluster_new(rk, (int)brokers) : NULL;

        pthread_sigmask(SIG_SETMASK, &old, NULL);

        if (!mc) {
                fprintf(stderr, "mock-cluster: could not create the mock cluster\n");
                if (rk)
                        rd_kafka_destroy(rk);
                return 1;
        }

        printf("BOOTSTRAP %s\nREADY\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);

        while (!quit && !stop_requested) {
                char *args[MAX_ARGS + 1];
                int n = 0;
                char *save = NULL, *tok;

                if (!fgets(line, sizeof(line), stdin))
                        break; /* EOF, read error, or EINTR from a termination signal */
                if (!strchr(line, '\n') && !feof(stdin)) {
                        int c;
                        while ((c = getchar()) != '\n' && c != EOF)
                                ; /* drop the rest of an over-long line so it yields one reply */
                        reply("ERR line too long");
                        continue;
                }
                for (tok = strtok_r(line, " \t\r\n", &save); tok && n <= MAX_ARGS;
                     tok = strtok_r(NULL, " \t\r\n", &save))
                        args[n++] = tok;
                if (n == 0)
                        continue; /* blank lines get no reply, so they cannot desync the caller */
                if (n > MAX_ARGS) {
                        reply("ERR too many arguments");
                        continue;
                }
                dispatch(mc, n, args, &quit);
        }

        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 0;
}
