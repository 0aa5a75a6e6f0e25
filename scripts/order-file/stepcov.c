// stepcov: which code of a program's main thread runs, found by single-stepping it.
//
//   stepcov [-c] LO HI OUT -- PROGRAM ARGS...
//
// With -c each line is "ADDRESS COUNT": how many instructions ran in that block, a profile exact to
// the instruction (docs/benchmarks.md maps it to functions to show where a start's time goes).
//
// Runs PROGRAM under ptrace, single-steps its main thread to the end and writes to OUT the
// addresses (hex, one per line) of the 16-byte blocks in [LO, HI) that held an executed
// instruction. make-order-file.sh maps them to functions. Exact where sampling is not: a function
// run once for 50 ns counts as much as a hot loop, which is what page-level layout needs (a
// touched 4 KiB page costs the same however briefly it is used).
//
// Only the main thread is traced (no PTRACE_O_TRACECLONE): threads and children run untraced
// and at full speed; a child made by clone does not inherit the trap flag (the kernel clears
// single-stepping in copy_process). A single step costs ~25 us in a VM: a berth-runtime `run`
// (~6 million instructions) takes about three minutes.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    bool counts = argc > 1 && strcmp(argv[1], "-c") == 0;
    if (counts) {
        argv++;
        argc--;
    }
    if (argc < 6 || argv[4][0] != '-' || argv[4][1] != '-') {
        fprintf(stderr, "usage: stepcov [-c] LO HI OUT -- PROGRAM ARGS...\n");
        return 2;
    }
    uint64_t lo = strtoull(argv[1], NULL, 16), hi = strtoull(argv[2], NULL, 16);
    if (hi <= lo) { fprintf(stderr, "stepcov: empty range\n"); return 2; }
    size_t blocks = (hi - lo) >> 4;
    unsigned int *seen = calloc(blocks, sizeof *seen);
    if (!seen) { perror("stepcov: calloc"); return 1; }

    pid_t pid = fork();
    if (pid < 0) { perror("stepcov: fork"); return 1; }
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        execv(argv[5], argv + 5);
        perror("stepcov: execv");
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFSTOPPED(status)) { fprintf(stderr, "stepcov: %s did not start\n", argv[5]); return 1; }
    ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)PTRACE_O_EXITKILL);

    long steps = 0;
    int deliver = 0;
    for (;;) {
        if (ptrace(PTRACE_SINGLESTEP, pid, NULL, (void *)(long)deliver) < 0) break;
        if (waitpid(pid, &status, __WALL) < 0) break;
        if (WIFEXITED(status) || WIFSIGNALED(status)) break;
        // A stop for anything but our trap is a signal for the program: hand it on.
        deliver = WSTOPSIG(status) == SIGTRAP ? 0 : WSTOPSIG(status);
        struct user_regs_struct regs;
        if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) == 0 && regs.rip >= lo && regs.rip < hi)
            seen[(regs.rip - lo) >> 4]++;
        steps++;
    }

    FILE *out = fopen(argv[3], "w");
    if (!out) { perror("stepcov: open output"); return 1; }
    for (size_t i = 0; i < blocks; i++)
        if (seen[i] && counts) fprintf(out, "%llx %u\n", (unsigned long long)(lo + (i << 4)), seen[i]);
        else if (seen[i]) fprintf(out, "%llx\n", (unsigned long long)(lo + (i << 4)));
    if (fclose(out) != 0) { perror("stepcov: write output"); return 1; }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(stderr, "stepcov: %ld steps, %s exited %d\n", steps, argv[5], code);
    return code;
}
