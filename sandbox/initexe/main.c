/* sandbox/initexe/main.c - the sandbox's init as a program of its own.
 *
 * Linked with the sandbox's objects and libseccomp only (the Makefile's
 * sandbox-init), embedded in the library by sandbox/initbin.c and exec'd
 * by sandbox_start from a sealed memfd: PID 1 of a build maps two
 * libraries instead of the thirty of codebuild-local (an exec of which
 * costs some 3 ms a build), and its /proc/1/exe is that sealed copy, not a
 * file of the host a build with the capabilities to open it could rewrite.
 * When the kernel refuses to exec a memfd, sandbox_start runs
 * /proc/self/exe SANDBOX_INIT_ARG instead (cli/main.c).
 */
#include "sandbox/sandbox.h"

int main(int argc, char **argv)
{
	return sandbox_init_main(argc, argv);
}
