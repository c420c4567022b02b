/* sandbox/initbin.c - the init program (sandbox/initexe/main.c, built
 * first as $(BUILD)/sandbox-init) embedded in the library with the
 * assembler's .incbin; the Makefile passes its path as SANDBOX_INIT_ELF
 * (relative to the repository root, where make runs). */
#include "sandbox/sandbox_internal.h"

#ifndef SANDBOX_INIT_ELF
#error "SANDBOX_INIT_ELF: the path of the init program to embed (see the Makefile)"
#endif

__asm__(".pushsection .rodata\n"
	".global sandbox_init_elf\n"
	".type sandbox_init_elf, @object\n"
	".balign 16\n"
	"sandbox_init_elf:\n"
	".incbin \"" SANDBOX_INIT_ELF "\"\n"
	".global sandbox_init_elf_end\n"
	"sandbox_init_elf_end:\n"
	".popsection\n");
