/* Ctrl-C during a kernel call: a SIGINT handler that raises a flag the epoch
 * loop reads between mini-batches, installed only for the call.
 *
 * The handler also calls the handler it replaced (Python's, which records the
 * signal for the interpreter), so once the kernel has returned and the
 * previous handler is back, Python runs its own SIGINT handling as if the
 * signal had arrived then: KeyboardInterrupt by default, or the program's own
 * handler. If the previous disposition was the default (terminate), it is
 * re-raised on restore; if it was "ignore", nothing is installed.
 *
 * Included by one module (archfit.kernels): the flag and the saved handler
 * are that module's. Only the thread that runs Python's signal handlers (the
 * main thread) installs it, so install/restore never race.
 */
#ifndef ARCHFIT_INTERRUPT_H
#define ARCHFIT_INTERRUPT_H

#include <signal.h>
#include <string.h>

static int archfit_interrupt_flag = 0;          /* read with __atomic_load_n */

#if defined(_WIN32)
/* No sigaction: the kernels are not interrupted mid-epoch on Windows. */
static int archfit_interrupt_install(void) { return 0; }
static void archfit_interrupt_restore(void) {}
#else
static struct sigaction archfit_previous_sigint;

static void archfit_on_sigint(int sig, siginfo_t* info, void* context)
{
    __atomic_store_n(&archfit_interrupt_flag, 1, __ATOMIC_SEQ_CST);
    if (archfit_previous_sigint.sa_flags & SA_SIGINFO) {
        if (archfit_previous_sigint.sa_sigaction != NULL)
            archfit_previous_sigint.sa_sigaction(sig, info, context);
    } else if (archfit_previous_sigint.sa_handler != SIG_DFL &&
               archfit_previous_sigint.sa_handler != SIG_IGN &&
               archfit_previous_sigint.sa_handler != NULL) {
        archfit_previous_sigint.sa_handler(sig);
    }
}

/* Install the handler; 1 if installed (restore it later), 0 if SIGINT is
 * ignored or the handler cannot be installed. Clears the flag. */
static int archfit_interrupt_install(void)
{
    struct sigaction ours;
    __atomic_store_n(&archfit_interrupt_flag, 0, __ATOMIC_SEQ_CST);
    if (sigaction(SIGINT, NULL, &archfit_previous_sigint) != 0)
        return 0;
    if (!(archfit_previous_sigint.sa_flags & SA_SIGINFO) &&
            archfit_previous_sigint.sa_handler == SIG_IGN)
        return 0;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = archfit_on_sigint;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&ours.sa_mask);
    return sigaction(SIGINT, &ours, NULL) == 0;
}

/* Put the previous handler back; a SIGINT that came meanwhile and would have
 * terminated the process (the default disposition) terminates it now. */
static void archfit_interrupt_restore(void)
{
    sigaction(SIGINT, &archfit_previous_sigint, NULL);
    if (__atomic_load_n(&archfit_interrupt_flag, __ATOMIC_SEQ_CST) &&
            !(archfit_previous_sigint.sa_flags & SA_SIGINFO) &&
            archfit_previous_sigint.sa_handler == SIG_DFL)
        raise(SIGINT);
}
#endif

#endif
