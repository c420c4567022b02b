/* util/banned.h - functions we never use (git's banned.h).  Included last by
 * every .c file through the Makefile's -include. */
#ifndef CBL_BANNED_H
#define CBL_BANNED_H

#define CBL_BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) CBL_BANNED(strcpy)
#undef strcat
#define strcat(x, y) CBL_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) CBL_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) CBL_BANNED(strncat)
#undef sprintf
#define sprintf(...) CBL_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) CBL_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) CBL_BANNED(strtok)
#undef gets
#define gets(x) CBL_BANNED(gets)

#endif
