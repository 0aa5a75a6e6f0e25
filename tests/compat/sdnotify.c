/* systemd-notify for a busybox rootfs: sends each argument as one datagram to $NOTIFY_SOCKET
   ("\n" in an argument is a newline). Built with gcc -static by the tests that need it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) { fprintf(stderr, "sdnotify: NOTIFY_SOCKET is not set\n"); return 2; }
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    strncpy(address.sun_path, path, sizeof address.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { perror("sdnotify: socket"); return 1; }
    for (int i = 1; i < argc; i++) {
        char message[4096];
        size_t n = 0;
        for (const char *s = argv[i]; *s && n < sizeof message; s++) {
            if (s[0] == '\\' && s[1] == 'n') { message[n++] = '\n'; s++; }
            else message[n++] = *s;
        }
        if (sendto(fd, message, n, 0, (struct sockaddr *)&address, sizeof address) < 0) { perror("sdnotify: sendto"); return 1; }
    }
    return 0;
}
