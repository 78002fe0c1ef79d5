/*
 * hatch-pbs Windows launcher: bin\<script>.exe of a hatch-pbs artifact.
 *
 * The launcher is this program followed by a payload that hatch_pbs.launchers.write_windows_launcher appends:
 *
 *     interpreter (UTF-8, relative to the directory of the .exe, e.g. "..\python\python.exe")  '\0'
 *     interpreter arguments (UTF-8, already a Windows command-line fragment)                   '\0'
 *     payload length: the number of bytes above, 4 bytes little-endian
 *     magic: the 8 bytes "HPBSLNC1"
 *
 * It starts    "<absolute interpreter>" <interpreter arguments> "<absolute path of this .exe>" <rest>
 * where <rest> is the launcher's own command line (GetCommandLineW) after its program-name token, copied
 * verbatim: the interpreter's C runtime parses the user's arguments exactly as if it had been run directly.
 * The program-name token is skipped the way CommandLineToArgvW does it: up to the next '"' when it starts with
 * one, else up to the first space or tab; then the blanks after it.
 *
 * The interpreter shares the launcher's console and standard handles, runs in a job object that kills it when the
 * launcher goes away (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE; its own children may leave the job silently, as they
 * would if the interpreter had been started directly), and receives Ctrl+C / Ctrl+Break itself: the launcher
 * ignores them with a handler routine (not SetConsoleCtrlHandler(NULL, TRUE), whose "ignore Ctrl+C" flag the
 * child would inherit, so Python would never see KeyboardInterrupt). The launcher exits with the interpreter's
 * exit code (all 32 bits).
 *
 * When the launcher itself fails (no or corrupt payload, interpreter missing, CreateProcessW error) it writes one
 * line "hatch-pbs launcher: ..." naming the path involved to its standard error (if it has one: a GUI launcher
 * started from Explorer has none; it shows no message box) and exits with 127, the status a POSIX shell (and the
 * hatch-pbs sh launcher) uses for "command not found".
 *
 * Build with -DHPBS_GUI and the windows subsystem for GUI scripts (the payload then names pythonw.exe); see
 * README.md next to this file. No C runtime: kernel32 (and user32 for the GUI variant) only, entry point
 * hpbs_entry.
 */

#define WIN32_LEAN_AND_MEAN
#ifndef UNICODE
#define UNICODE
#endif
#ifndef _UNICODE
#define _UNICODE
#endif
#include <windows.h>

#define HPBS_MAGIC "HPBSLNC1"
#define HPBS_MAGIC_SIZE 8
#define HPBS_TRAILER_SIZE 12 /* 4-byte length + magic */
#define HPBS_MAX_PAYLOAD (1u << 20)
#define HPBS_EXIT_FAILURE 127

/* The compiler may emit calls to these for structure initialization and copies; there is no C runtime. */
void *memset(void *dest, int value, size_t count)
{
    volatile unsigned char *p = (volatile unsigned char *)dest;
    while (count--)
        *p++ = (unsigned char)value;
    return dest;
}

void *memcpy(void *dest, const void *src, size_t count)
{
    volatile unsigned char *d = (volatile unsigned char *)dest;
    const unsigned char *s = (const unsigned char *)src;
    while (count--)
        *d++ = *s++;
    return dest;
}

static HANDLE heap;

static void die(const wchar_t *what, const wchar_t *path, DWORD error);

static void *allocate(SIZE_T size)
{
    void *block = HeapAlloc(heap, 0, size ? size : 1);
    if (!block)
        die(L"out of memory", NULL, 0);
    return block;
}

static SIZE_T wide_length(const wchar_t *text)
{
    SIZE_T length = 0;
    while (text[length])
        length++;
    return length;
}

/* A growable wide string. */
typedef struct {
    wchar_t *text;
    SIZE_T length;
    SIZE_T capacity;
} Buffer;

static void buffer_append_n(Buffer *buffer, const wchar_t *text, SIZE_T count)
{
    if (buffer->length + count + 1 > buffer->capacity) {
        SIZE_T capacity = (buffer->length + count + 1) * 2;
        wchar_t *grown = (wchar_t *)allocate(capacity * sizeof(wchar_t));
        for (SIZE_T i = 0; i < buffer->length; i++)
            grown[i] = buffer->text[i];
        if (buffer->text)
            HeapFree(heap, 0, buffer->text);
        buffer->text = grown;
        buffer->capacity = capacity;
    }
    for (SIZE_T i = 0; i < count; i++)
        buffer->text[buffer->length++] = text[i];
    buffer->text[buffer->length] = L'\0';
}

static void buffer_append(Buffer *buffer, const wchar_t *text)
{
    buffer_append_n(buffer, text, wide_length(text));
}

static void buffer_append_number(Buffer *buffer, DWORD number)
{
    wchar_t digits[16];
    int count = 0;
    do {
        digits[15 - count++] = (wchar_t)(L'0' + number % 10);
        number /= 10;
    } while (number);
    buffer_append_n(buffer, digits + 16 - count, (SIZE_T)count);
}

/* Write text to standard error: wide characters to a console, UTF-8 to a file or pipe. */
static void write_stderr(const wchar_t *text, SIZE_T length)
{
    HANDLE handle = GetStdHandle(STD_ERROR_HANDLE);
    DWORD mode, written;
    if (handle == NULL || handle == INVALID_HANDLE_VALUE)
        return;
    if (GetConsoleMode(handle, &mode)) {
        WriteConsoleW(handle, text, (DWORD)length, &written, NULL);
        return;
    }
    int size = WideCharToMultiByte(CP_UTF8, 0, text, (int)length, NULL, 0, NULL, NULL);
    if (size <= 0)
        return;
    char *bytes = (char *)allocate((SIZE_T)size);
    WideCharToMultiByte(CP_UTF8, 0, text, (int)length, bytes, size, NULL, NULL);
    WriteFile(handle, bytes, (DWORD)size, &written, NULL);
}

/* "hatch-pbs launcher: <what>[: <path>][ (Windows error <error>)]", then exit 127. */
static void die(const wchar_t *what, const wchar_t *path, DWORD error)
{
    static int dying;
    if (!dying) {
        Buffer message = {0};
        dying = 1;
        buffer_append(&message, L"hatch-pbs launcher: ");
        buffer_append(&message, what);
        if (path) {
            buffer_append(&message, L": ");
            buffer_append(&message, path);
        }
        if (error) {
            buffer_append(&message, L" (Windows error ");
            buffer_append_number(&message, error);
            buffer_append(&message, L")");
        }
        buffer_append(&message, L"\r\n");
        write_stderr(message.text, message.length);
    }
    ExitProcess(HPBS_EXIT_FAILURE);
}

/* The full path of this .exe, any length. */
static wchar_t *module_path(void)
{
    DWORD capacity = MAX_PATH;
    for (;;) {
        wchar_t *path = (wchar_t *)allocate(capacity * sizeof(wchar_t));
        DWORD length = GetModuleFileNameW(NULL, path, capacity);
        if (length == 0)
            die(L"cannot find the path of the launcher", NULL, GetLastError());
        if (length < capacity - 1)
            return path;
        HeapFree(heap, 0, path);
        if (capacity >= 32768 * 2)
            die(L"the path of the launcher is too long", NULL, 0);
        capacity *= 2;
    }
}

static int read_exactly(HANDLE file, LONGLONG offset, void *into, DWORD size)
{
    LARGE_INTEGER position;
    DWORD count = 0;
    position.QuadPart = offset;
    if (!SetFilePointerEx(file, position, NULL, FILE_BEGIN))
        return 0;
    while (size) {
        if (!ReadFile(file, into, size, &count, NULL) || count == 0)
            return 0;
        into = (char *)into + count;
        size -= count;
    }
    return 1;
}

static wchar_t *from_utf8(const char *text, int size, const wchar_t *exe)
{
    if (size == 0) {
        wchar_t *empty = (wchar_t *)allocate(sizeof(wchar_t));
        empty[0] = L'\0';
        return empty;
    }
    int length = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text, size, NULL, 0);
    if (length <= 0)
        die(L"the launcher's payload is not valid UTF-8", exe, GetLastError());
    wchar_t *wide = (wchar_t *)allocate(((SIZE_T)length + 1) * sizeof(wchar_t));
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text, size, wide, length);
    wide[length] = L'\0';
    return wide;
}

/* Read the payload at the end of this .exe: the relative interpreter path and the interpreter arguments. */
static void read_payload(const wchar_t *exe, wchar_t **interpreter, wchar_t **arguments)
{
    HANDLE file = CreateFileW(exe, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                              OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    LARGE_INTEGER size;
    unsigned char trailer[HPBS_TRAILER_SIZE];
    if (file == INVALID_HANDLE_VALUE)
        die(L"cannot open the launcher to read its payload", exe, GetLastError());
    if (!GetFileSizeEx(file, &size) || size.QuadPart < HPBS_TRAILER_SIZE
        || !read_exactly(file, size.QuadPart - HPBS_TRAILER_SIZE, trailer, HPBS_TRAILER_SIZE))
        die(L"the launcher has no payload (not written by hatch-pbs?)", exe, 0);
    for (int i = 0; i < HPBS_MAGIC_SIZE; i++)
        if (trailer[4 + i] != (unsigned char)HPBS_MAGIC[i])
            die(L"the launcher has no payload (not written by hatch-pbs?)", exe, 0);
    DWORD length = (DWORD)trailer[0] | (DWORD)trailer[1] << 8 | (DWORD)trailer[2] << 16 | (DWORD)trailer[3] << 24;
    if (length < 2 || length > HPBS_MAX_PAYLOAD || (LONGLONG)length > size.QuadPart - HPBS_TRAILER_SIZE)
        die(L"the launcher's payload is corrupt (bad length)", exe, 0);
    char *payload = (char *)allocate(length);
    if (!read_exactly(file, size.QuadPart - HPBS_TRAILER_SIZE - length, payload, length))
        die(L"cannot read the launcher's payload", exe, GetLastError());
    CloseHandle(file);

    /* interpreter '\0' arguments '\0': exactly two NULs, the second one last. */
    DWORD first = 0;
    while (first < length && payload[first])
        first++;
    DWORD second = first + 1;
    while (second < length && payload[second])
        second++;
    if (first == 0 || second != length - 1)
        die(L"the launcher's payload is corrupt (bad fields)", exe, 0);
    *interpreter = from_utf8(payload, (int)first, exe);
    *arguments = from_utf8(payload + first + 1, (int)(second - first - 1), exe);
    HeapFree(heap, 0, payload);
}

static int starts_with(const wchar_t *text, const wchar_t *prefix)
{
    while (*prefix)
        if (*text++ != *prefix++)
            return 0;
    return 1;
}

/*
 * The absolute, normalized path of `relative` (either separator) taken from the directory of `exe`, any length.
 * GetFullPathNameW resolves "." and ".." but leaves "\\?\" paths alone, so such a prefix is taken off first;
 * a result of MAX_PATH characters or more gets one (back), since CreateProcessW needs it for long paths.
 */
static wchar_t *resolve_interpreter(const wchar_t *exe, const wchar_t *relative)
{
    Buffer joined = {0};
    const wchar_t *path = exe;
    if (starts_with(exe, L"\\\\?\\UNC\\")) {
        path = exe + 8;
        buffer_append(&joined, L"\\\\");
    } else if (starts_with(exe, L"\\\\?\\")) {
        path = exe + 4;
    }
    SIZE_T directory = wide_length(path);
    while (directory && path[directory - 1] != L'\\' && path[directory - 1] != L'/')
        directory--;
    buffer_append_n(&joined, path, directory); /* keeps the trailing separator */
    buffer_append(&joined, relative);

    DWORD capacity = GetFullPathNameW(joined.text, 0, NULL, NULL);
    if (capacity == 0)
        die(L"cannot resolve the interpreter path", joined.text, GetLastError());
    wchar_t *full = (wchar_t *)allocate((SIZE_T)capacity * sizeof(wchar_t));
    DWORD length = GetFullPathNameW(joined.text, capacity, full, NULL);
    if (length == 0 || length >= capacity)
        die(L"cannot resolve the interpreter path", joined.text, GetLastError());
    if (length < MAX_PATH || starts_with(full, L"\\\\?\\") || starts_with(full, L"\\\\.\\"))
        return full;
    Buffer prefixed = {0};
    if (starts_with(full, L"\\\\")) { /* \\server\share\... */
        buffer_append(&prefixed, L"\\\\?\\UNC\\");
        buffer_append(&prefixed, full + 2);
    } else {
        buffer_append(&prefixed, L"\\\\?\\");
        buffer_append(&prefixed, full);
    }
    return prefixed.text;
}

/* The 8.3 form of an existing path without a "\\?\" prefix, if shorter than MAX_PATH; else NULL. */
static wchar_t *short_path(const wchar_t *path)
{
    DWORD capacity = GetShortPathNameW(path, NULL, 0);
    if (capacity == 0)
        return NULL;
    wchar_t *short_name = (wchar_t *)allocate((SIZE_T)capacity * sizeof(wchar_t));
    DWORD length = GetShortPathNameW(path, short_name, capacity);
    if (length == 0 || length >= capacity)
        return NULL;
    if (starts_with(short_name, L"\\\\?\\UNC\\")) {
        short_name += 6;
        short_name[0] = L'\\';
    } else if (starts_with(short_name, L"\\\\?\\")) {
        short_name += 4;
    }
    return wide_length(short_name) < MAX_PATH ? short_name : NULL;
}

/* The launcher's command line after its program-name token and the blanks after it (CommandLineToArgvW rules). */
static const wchar_t *arguments_after_program_name(const wchar_t *command_line)
{
    const wchar_t *p = command_line;
    if (*p == L'"') {
        p++;
        while (*p && *p != L'"')
            p++;
        if (*p == L'"')
            p++;
    } else {
        while (*p && *p != L' ' && *p != L'\t')
            p++;
    }
    while (*p == L' ' || *p == L'\t')
        p++;
    return p;
}

static HANDLE child_process;

static BOOL WINAPI ignore_control_event(DWORD event)
{
    /* The interpreter, in the same console, gets the event too and decides. On close, logoff and shutdown
       Windows ends the launcher once this returns, and the job would take the interpreter with it: wait for the
       interpreter (within the time Windows allows) so that it can clean up. */
    if (event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT && child_process)
        WaitForSingleObject(child_process, INFINITE);
    return TRUE;
}

static void inheritable(HANDLE handle)
{
    if (handle != NULL && handle != INVALID_HANDLE_VALUE)
        SetHandleInformation(handle, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
}

void WINAPI hpbs_entry(void)
{
    wchar_t *relative, *arguments;
    heap = GetProcessHeap();
    wchar_t *exe = module_path();
    read_payload(exe, &relative, &arguments);
    wchar_t *interpreter = resolve_interpreter(exe, relative);
    DWORD attributes = GetFileAttributesW(interpreter);
    if (attributes == INVALID_FILE_ATTRIBUTES || (attributes & FILE_ATTRIBUTE_DIRECTORY))
        die(L"the bundled Python interpreter is missing", interpreter, 0);

    Buffer command = {0};
    buffer_append(&command, L"\"");
    buffer_append(&command, interpreter);
    buffer_append(&command, L"\"");
    if (*arguments) {
        buffer_append(&command, L" ");
        buffer_append(&command, arguments);
    }
    buffer_append(&command, L" \"");
    buffer_append(&command, exe);
    buffer_append(&command, L"\"");
    const wchar_t *rest = arguments_after_program_name(GetCommandLineW());
    if (*rest) {
        buffer_append(&command, L" ");
        buffer_append(&command, rest);
    }

    SetConsoleCtrlHandler(ignore_control_event, TRUE);

    HANDLE job = CreateJobObjectW(NULL, NULL);
    if (job) {
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits = {0};
        limits.BasicLimitInformation.LimitFlags =
            JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK;
        if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof(limits))) {
            CloseHandle(job);
            job = NULL;
        }
    }

    /* The interpreter gets the launcher's startup information (window state, console title, C runtime file
       descriptors) and its standard handles. STARTF_USEHOTKEY and STARTF_HASSHELLDATA (0x400) reuse the
       hStdInput/hStdOutput fields, so they cannot travel with STARTF_USESTDHANDLES. */
    STARTUPINFOW startup = {0};
    startup.cb = sizeof(startup);
    GetStartupInfoW(&startup);
    startup.lpReserved = NULL;
    startup.dwFlags &= ~(DWORD)(STARTF_USEHOTKEY | 0x400);
    startup.dwFlags |= STARTF_USESTDHANDLES;
    startup.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    startup.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    startup.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    inheritable(startup.hStdInput);
    inheritable(startup.hStdOutput);
    inheritable(startup.hStdError);

    PROCESS_INFORMATION child = {0};
    if (!CreateProcessW(interpreter, command.text, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, &startup,
                        &child)) {
        DWORD error = GetLastError();
        /* Not every Windows (nor Wine) starts a program from a path of MAX_PATH characters or more: retry with
           its 8.3 short name where the volume has them. */
        wchar_t *short_name = wide_length(interpreter) >= MAX_PATH ? short_path(interpreter) : NULL;
        if (!short_name || !CreateProcessW(short_name, command.text, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL,
                                           &startup, &child))
            die(L"cannot start the bundled Python interpreter", interpreter, error);
    }
    child_process = child.hProcess;
    if (job)
        AssignProcessToJobObject(job, child.hProcess); /* may fail in a job that forbids breakaway: run anyway */
    ResumeThread(child.hThread);
    CloseHandle(child.hThread);

#ifdef HPBS_GUI
    /* Windows shows the "app starting" cursor until the launcher reads a message: read one of its own. */
    {
        MSG message;
        PostMessageW(NULL, WM_NULL, 0, 0);
        GetMessageW(&message, NULL, 0, 0);
    }
#endif

    DWORD status = HPBS_EXIT_FAILURE;
    WaitForSingleObject(child.hProcess, INFINITE);
    if (!GetExitCodeProcess(child.hProcess, &status))
        status = HPBS_EXIT_FAILURE;
    ExitProcess(status);
}
