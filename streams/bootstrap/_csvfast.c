/* Plain CSV lines to change events in C, mostly without the GIL: the bootstrap's native path.
 *
 * Converter(delimiter, width, fragments, slots, removal, since, latest, max_bytes, miss,
 * memo_limit).convert(block, lines[, index]) takes a block of plain CSV lines (UTF-8, LF ends,
 * no quotes, no CR: see CsvSource._block) and returns
 *     (keys, payloads, lines, stamps or None, fallback, skipped)
 * Every row is either turned into exactly the bytes the Python converter
 * (streams.bootstrap.rows.ChunkConverter) makes of it, or handed back in ``fallback`` as
 * (line, raw line) for that converter to build or reject with its reason. A check here may send
 * a good row to Python; it never lets through a row Python would treat otherwise:
 *   - ids and strings: not empty, nothing a JSON string escapes (< 0x20, '"', '\\');
 *   - emails: the exact language of convert.EMAIL_PATTERN, at most EMAIL_MAX bytes;
 *   - ints: -?[0-9]{1,18}, written as str(int(text)) writes them;
 *   - floats and update times: -?[0-9]+(.[0-9]+)?, finite, times in [0, latest], written as
 *     repr(float(text)) writes them: with at most 15 significant digits in repr's fixed range
 *     that is the text itself, tidied (see put_plain); other values go through CPython's own
 *     float() and repr() (PyOS_string_to_double, PyOS_double_to_string) under the GIL;
 *   - memo columns (booleans, dates; removal flags; modified-at times): looked up per cell in
 *     tables that ``miss(which, cell)`` fills, one Python conversion per distinct value;
 *   - the event no larger than max_bytes.
 * Empty cells and removals always go to Python.
 *
 * A chunk is converted in passes: without the GIL, every row that needs no Python (nearly all
 * of them); with the GIL, the new memo values those rows met are converted by miss(), a column
 * at a time; the rows that waited for them are converted (without the GIL again when they are
 * many); with the GIL, what is left (odd numbers); then the Python objects (keys, payloads) are
 * made. The GIL is free for the producing thread while the GIL-free passes run. With a KeyIndex
 * as ``index`` every converted row's id is noted in it in the same passes (duplicate ids, see
 * dedupe.py).
 *
 * The bootstrap's reader thread calls this while the main thread produces and holds the GIL
 * most of the time: every return from a GIL-free section waits for it (up to the switch
 * interval), so a chunk's work is gathered into as few such sections as possible (scan_block
 * does every check of a block in one, convert() notes ids in its own).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { K_ID, K_LINE, K_TS, K_STRING, K_EMAIL, K_INT, K_FLOAT, K_MEMO };
/* Row verdicts */
enum { R_EVENT, R_PYTHON, R_SKIPPED, R_GIL, R_ERROR, R_NOMEM };

#define EMAIL_MAX 254
#define NUMBER_MAX 64
#define PLAIN_DIGITS 15 /* DBL_DIG: decimals this short survive a trip through a double */
#define WHICH_REMOVAL (-1)
#define WHICH_MODIFIED (-2)
#define KEPT_BYTES (64 << 20) /* the largest event buffer a converter keeps between chunks */
#define LINE_DIGITS 20 /* a line number as text */
#define GIL_FREE_ROWS 256 /* rows worth letting the GIL go for once more (see convert()) */
#define SLOT_EXTRA 24  /* a slot's text beyond its cell's length (at most: line numbers) */
_Static_assert(SLOT_EXTRA > LINE_DIGITS, "a line number with its sign fits in a slot's room");

/* ---- memo tables: cell bytes -> what miss() made of it ---- */

#define INLINE 26    /* key and text bytes kept in the slot itself */
#define LONG 255     /* a key_len or len that did not fit: see the entry's Cold record */

/* An open-addressing slot, one cache line: a lookup of a short cell reads nothing else (dates
 * and flags are read for every row; a second miss per lookup cost a fifth of the conversion). */
typedef struct {
    uint32_t tag;  /* high bits of the hash */
    uint32_t id;   /* Cold record + 1; 0: a free slot */
    uint8_t usable; /* the row can be built from it (else it goes to Python) */
    uint8_t flag;   /* removal: the value marks a removal */
    uint8_t key_len; /* LONG: see Cold */
    uint8_t len;     /* memo slots: the JSON text's length; LONG: see Cold */
    char key[INLINE];
    char text[INLINE];
} Entry;
_Static_assert(sizeof(Entry) == 64, "a slot is one cache line");

typedef struct {
    PyObject *key;   /* bytes, owned */
    PyObject *value; /* what miss() returned, owned */
    double number;   /* modified-at: UNIX seconds */
} Cold;

typedef struct {
    Entry *slots;   /* at most half full, 64-byte aligned inside `memory` */
    void *memory;
    size_t mask;    /* slots - 1 (a power of two); 0 before the first insert */
    Cold *cold;     /* per entry, in insertion order */
    size_t used, capacity;
    const Entry *last; /* the entry found last: columns like flags repeat their cells */
} Table;

static inline uint64_t load8(const char *s) {
    uint64_t word;
    memcpy(&word, s, 8);
    return word;
}

static inline uint64_t load4(const char *s) {
    uint32_t word;
    memcpy(&word, s, 4);
    return word;
}

static inline uint64_t mix(uint64_t a, uint64_t b) {
    a *= 0x9E3779B97F4A7C15ULL;
    a ^= b;
    a *= 0xBF58476D1CE4E5B9ULL;
    return a ^ (a >> 31);
}

/* A hash of s[0:n] from whole words (cells are short: a multiply per word, not per byte). The
 * low bits pick the slot, the high bits are the tag: both must be mixed. */
static uint64_t hash_bytes(const char *s, Py_ssize_t n) {
    uint64_t h = 0x2545F4914F6CDD1DULL ^ (uint64_t)n;
    Py_ssize_t i = 0;
    for (; i + 8 < n; i += 8) h = mix(h, load8(s + i));
    uint64_t tail; /* the last 1..8 bytes (the last word overlaps the one before: n is mixed in) */
    if (n >= 8) tail = load8(s + n - 8);
    else if (n >= 4) tail = load4(s) | load4(s + n - 4) << 32;
    else if (n > 0) tail = (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[n / 2] << 8 |
                          (uint64_t)(unsigned char)s[n - 1] << 16;
    else tail = 0;
    h = mix(h, tail);
    h ^= h >> 29;
    h *= 0x94D049BB133111EBULL;
    return h ^ (h >> 32);
}

/* s[0:n] == t[0:n] for short n without a call (memcmp's own call and dispatch cost more). */
static inline int same_bytes(const char *s, const char *t, Py_ssize_t n) {
    if (n >= 8 && n <= 16)
        return load8(s) == load8(t) && load8(s + n - 8) == load8(t + n - 8);
    if (n >= 4 && n < 8) return load4(s) == load4(t) && load4(s + n - 4) == load4(t + n - 4);
    if (n < 4) {
        for (Py_ssize_t i = 0; i < n; i++)
            if (s[i] != t[i]) return 0;
        return 1;
    }
    return memcmp(s, t, (size_t)n) == 0;
}

/* ---- eight bytes at a time: where a byte value is in a word ---- */

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    !defined(CSVFAST_SCALAR) /* the byte-at-a-time code, to test it */
#define SWAR 1
#define ONES 0x0101010101010101ULL
#define LOW7 0x7F7F7F7F7F7F7F7FULL

/* The high bit of each byte of `word` that equals `c`, exactly (no false positives). */
static inline uint64_t bytes_equal(uint64_t word, unsigned char c) {
    uint64_t x = word ^ (ONES * c);
    return ~(((x & LOW7) + LOW7) | x | LOW7);
}
#else
#define SWAR 0
#endif

/* How many bytes of s[0:n] equal c. */
static Py_ssize_t count_byte(const char *s, Py_ssize_t n, char c) {
    Py_ssize_t found = 0, i = 0;
#if SWAR
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, s + i, 8);
        /* The flags (one high bit per byte) summed by a multiply: without -mpopcnt, which not
         * every x86-64 has, __builtin_popcountll is a library call. */
        found += (Py_ssize_t)(((bytes_equal(word, (unsigned char)c) >> 7) * ONES) >> 56);
    }
#endif
    for (; i < n; i++) found += s[i] == c;
    return found;
}

static int entry_is(const Table *table, const Entry *entry, const char *s, Py_ssize_t n) {
    if (entry->key_len != LONG)
        return entry->key_len == n && same_bytes(entry->key, s, n);
    PyObject *key = table->cold[entry->id - 1].key;
    return PyBytes_GET_SIZE(key) == n && memcmp(PyBytes_AS_STRING(key), s, (size_t)n) == 0;
}

static const char *entry_text(const Table *table, const Entry *entry) {
    return entry->len != LONG ? entry->text : PyBytes_AS_STRING(table->cold[entry->id - 1].value);
}

static Py_ssize_t entry_len(const Table *table, const Entry *entry) {
    return entry->len != LONG ? entry->len : PyBytes_GET_SIZE(table->cold[entry->id - 1].value);
}

static double entry_number(const Table *table, const Entry *entry) {
    return table->cold[entry->id - 1].number;
}

/* The entry of a cell, or NULL; no Python calls (runs without the GIL). */
static const Entry *table_find(const Table *table, const char *s, Py_ssize_t n, uint64_t hash) {
    if (table->slots == NULL) return NULL;
    uint32_t tag = (uint32_t)(hash >> 32);
    for (size_t i = (size_t)hash & table->mask;; i = (i + 1) & table->mask) {
        const Entry *entry = &table->slots[i];
        if (entry->id == 0) return NULL;
        if (entry->tag == tag && entry_is(table, entry, s, n)) return entry;
    }
}

static void table_clear(Table *table) {
    for (size_t i = 0; i < table->used; i++) {
        Py_XDECREF(table->cold[i].key);
        Py_XDECREF(table->cold[i].value);
    }
    PyMem_Free(table->memory);
    PyMem_Free(table->cold);
    memset(table, 0, sizeof *table);
}

/* Room for one more entry (slots move: `last` is forgotten). */
static int table_reserve(Table *table) {
    table->last = NULL;
    if (table->used == table->capacity) {
        size_t capacity = table->capacity ? table->capacity * 2 : 64;
        Cold *cold = PyMem_Realloc(table->cold, capacity * sizeof(Cold));
        if (cold == NULL) return -1;
        table->cold = cold;
        table->capacity = capacity;
    }
    if (table->slots != NULL && (table->used + 1) * 2 <= table->mask + 1) return 0;
    size_t size = table->slots == NULL ? 128 : (table->mask + 1) * 2;
    void *memory = PyMem_Calloc(size + 1, sizeof(Entry));
    if (memory == NULL) return -1;
    Entry *slots = (Entry *)(((uintptr_t)memory + 63) & ~(uintptr_t)63);
    for (size_t i = 0; table->slots != NULL && i <= table->mask; i++) {
        const Entry *entry = &table->slots[i];
        if (entry->id == 0) continue;
        PyObject *key = table->cold[entry->id - 1].key;
        uint64_t hash = hash_bytes(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
        size_t j = (size_t)hash & (size - 1);
        while (slots[j].id != 0) j = (j + 1) & (size - 1);
        slots[j] = *entry;
    }
    PyMem_Free(table->memory);
    table->memory = memory;
    table->slots = slots;
    table->mask = size - 1;
    return 0;
}

/* ---- KeyIndex: duplicate ids of one snapshot (see streams/bootstrap/dedupe.py) ---- */

/* A slot of the id table: eight bytes, so that a million ids' table (twice their number of
 * slots) stays near the cache (a new id's slot is a random read: most rows are new ids). */
typedef struct {
    uint32_t tag; /* high bits of the hash */
    uint32_t id;  /* index into winners + 1; 0: a free slot */
} KeySlot;

typedef struct {
    long long line;
    double stamp;
    int stamped;
} Seen;

/* Per distinct id, in order: its newest row so far, where its bytes are and its hash (read
 * only when a tag matches and when the table grows). */
typedef struct {
    Seen seen;
    size_t key; /* offset in the arena; the key's bytes follow its length */
    uint64_t hash;
} Winner;

typedef struct {
    long long line;
    double stamp;
    int stamped;
    Py_ssize_t id;
} Loss;

typedef struct {
    PyObject_HEAD
    KeySlot *slots;
    size_t mask;
    Winner *winners; /* per distinct key */
    Py_ssize_t keys, winners_cap;
    Loss *losses;
    Py_ssize_t nlosses, losses_cap;
    char *arena;
    size_t arena_len, arena_cap;
    int busy; /* add() runs (it lets the GIL go: no second caller meanwhile) */
} KeyIndex;

/* One row for KeyIndex_add_one, gathered under the GIL (the key's bytes stay referenced). */
typedef struct {
    const char *key;
    Py_ssize_t n;
    long long line;
    double stamp;
    int stamped;
} Pending;

static int grow(void **array, Py_ssize_t *cap, Py_ssize_t need, size_t item) {
    if (need <= *cap) return 0;
    Py_ssize_t next = *cap ? *cap * 2 : 1024;
    while (next < need) next *= 2;
    void *grown = PyMem_RawRealloc(*array, (size_t)next * item);
    if (grown == NULL) return -1;
    *array = grown;
    *cap = next;
    return 0;
}

static int KeyIndex_rehash(KeyIndex *self) {
    size_t capacity = self->slots == NULL ? 1024 : (self->mask + 1) * 2;
    KeySlot *slots = PyMem_RawCalloc(capacity, sizeof(KeySlot));
    if (slots == NULL) return -1;
    for (Py_ssize_t id = 0; id < self->keys; id++) { /* in order of arrival: no probe of the old */
        size_t j = (size_t)self->winners[id].hash & (capacity - 1);
        while (slots[j].id != 0) j = (j + 1) & (capacity - 1);
        slots[j] = (KeySlot){(uint32_t)(self->winners[id].hash >> 32), (uint32_t)(id + 1)};
    }
    PyMem_RawFree(self->slots);
    self->slots = slots;
    self->mask = capacity - 1;
    return 0;
}

/* The newer row wins: the later update time, else the later line. */
static int newer(long long line, double stamp, int stamped, const Seen *than) {
    if (stamped != than->stamped) return stamped; /* a time beats none, as nulls sort first */
    if (stamped && stamp != than->stamp) return stamp > than->stamp;
    return line > than->line;
}

static int KeyIndex_add_one(KeyIndex *self, const char *key, Py_ssize_t n, long long line,
                            double stamp, int stamped) {
    if (self->keys >= UINT32_MAX - 1) return -1; /* ids are 32-bit */
    if ((size_t)(self->keys + 1) * 2 > (self->slots == NULL ? 0 : self->mask + 1) &&
        KeyIndex_rehash(self) < 0)
        return -1;
    uint64_t hash = hash_bytes(key, n);
    uint32_t tag = (uint32_t)(hash >> 32);
    size_t i = (size_t)hash & self->mask;
    for (;; i = (i + 1) & self->mask) {
        KeySlot *slot = &self->slots[i];
        if (slot->id == 0) break;
        if (slot->tag != tag) continue;
        Winner *known = &self->winners[slot->id - 1];
        if (known->hash != hash) continue;
        const char *stored = self->arena + known->key;
        Py_ssize_t stored_len;
        memcpy(&stored_len, stored, sizeof stored_len);
        if (stored_len != n || !same_bytes(stored + sizeof stored_len, key, n)) continue;
        Seen *winner = &known->seen;
        Loss loss = {line, stamp, stamped, (Py_ssize_t)slot->id - 1};
        if (newer(line, stamp, stamped, winner)) {
            loss.line = winner->line;
            loss.stamp = winner->stamp;
            loss.stamped = winner->stamped;
            winner->line = line;
            winner->stamp = stamp;
            winner->stamped = stamped;
        }
        if (grow((void **)&self->losses, &self->losses_cap, self->nlosses + 1, sizeof(Loss)) < 0)
            return -1;
        self->losses[self->nlosses++] = loss;
        return 0;
    }
    size_t need = self->arena_len + sizeof(Py_ssize_t) + (size_t)n;
    if (need > self->arena_cap) {
        size_t cap = self->arena_cap ? self->arena_cap * 2 : 1 << 16;
        while (cap < need) cap *= 2;
        char *grown = PyMem_RawRealloc(self->arena, cap);
        if (grown == NULL) return -1;
        self->arena = grown;
        self->arena_cap = cap;
    }
    if (grow((void **)&self->winners, &self->winners_cap, self->keys + 1, sizeof(Winner)) < 0)
        return -1;
    self->winners[self->keys] = (Winner){{line, stamp, stamped}, self->arena_len, hash};
    self->slots[i] = (KeySlot){tag, (uint32_t)(++self->keys)};
    memcpy(self->arena + self->arena_len, &n, sizeof n);
    memcpy(self->arena + self->arena_len + sizeof n, key, (size_t)n);
    self->arena_len = need;
    return 0;
}

static PyTypeObject KeyIndexType;

/* ---- the converter ---- */

typedef struct {
    long long number;   /* the file's line number */
    Py_ssize_t start;   /* the line in the block */
    Py_ssize_t length;
    Py_ssize_t event;   /* the event in the output buffer */
    Py_ssize_t event_length;
    Py_ssize_t key;     /* the id cell in the block */
    Py_ssize_t key_length;
    double stamp;
    int verdict;
} Row;

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buffer;

typedef struct {
    int kind;
    Py_ssize_t field;
    Table memo;
} Slot;

typedef struct {
    PyObject_HEAD
    char delimiter;
    Py_ssize_t width;
    Py_ssize_t nslots;
    Slot *slots;
    PyObject *fragments; /* tuple of bytes, nslots + 1 */
    const char **fragment_data; /* their bytes and lengths, read for every row */
    Py_ssize_t *fragment_len;
    Py_ssize_t fragment_bytes; /* all of them */
    Py_ssize_t id_field;
    int has_ts;
    Py_ssize_t removal_field; /* -1: none */
    int removal_empty;        /* an empty removal cell marks a removal */
    Table removal;
    Py_ssize_t since_field; /* -1: none */
    double since;
    Table modified;
    double latest;
    Py_ssize_t max_bytes;
    PyObject *miss;
    size_t memo_limit;
    int busy; /* convert() runs (it lets the GIL go: no second caller meanwhile) */
    /* Kept from one convert() to the next: growing them anew per chunk cost reallocations and
     * fresh pages (both zeroed by the kernel). */
    Buffer events;
    Row *rows;
    Py_ssize_t rows_cap;
} Converter;

/* Room for `more` bytes after b->len (raw allocation: the first pass runs without the GIL). */
static int reserve(Buffer *b, Py_ssize_t more) {
    if (b->len + more <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + more) cap *= 2;
    char *grown = PyMem_RawRealloc(b->data, (size_t)cap);
    if (grown == NULL) return -1;
    b->data = grown;
    b->cap = cap;
    return 0;
}

/* s[0:n] appended where reserve() made room. Fragments and cells are short: a call to memcpy
 * (or a loop per byte) costs more than two overlapping word copies. */
static inline void append(Buffer *b, const char *s, Py_ssize_t n) {
    char *to = b->data + b->len;
    if (n >= 8 && n <= 16) {
        uint64_t head = load8(s), last = load8(s + n - 8);
        memcpy(to, &head, 8);
        memcpy(to + n - 8, &last, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t head, last;
        memcpy(&head, s, 4);
        memcpy(&last, s + n - 4, 4);
        memcpy(to, &head, 4);
        memcpy(to + n - 4, &last, 4);
    } else if (n < 4) {
        for (Py_ssize_t i = 0; i < n; i++) to[i] = s[i];
    } else {
        memcpy(to, s, (size_t)n);
    }
    b->len += n;
}

static int put(Buffer *b, const char *s, Py_ssize_t n) {
    if (reserve(b, n) < 0) return -1;
    append(b, s, n);
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Byte classes of email addresses, looked up per byte (set by init_classes). */
#define C_ALNUM 1 /* [A-Za-z0-9] */
#define C_LOCAL 2 /* [A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]: a local part's bytes */
#define C_LABEL 4 /* [A-Za-z0-9-]: a domain label's bytes */
static unsigned char classes[256];

static void init_classes(void) {
    for (int c = 0; c < 256; c++) {
        int alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        int local = alnum || (c != 0 && strchr(".!#$%&'*+/=?^_`{|}~-", c) != NULL);
        classes[c] = (unsigned char)((alnum ? C_ALNUM | C_LABEL : 0) | (local ? C_LOCAL : 0) |
                                     (c == '-' ? C_LABEL : 0));
    }
}

static inline int is_class(char c, int class) { return classes[(unsigned char)c] & class; }

#if SWAR
/* No control byte (< 0x20), '"' or '\\' in the word. */
static inline int word_plain(uint64_t word) {
    uint64_t control = (word - ONES * 0x20) & ~word & (ONES * 0x80);
    return !(control | bytes_equal(word, '"') | bytes_equal(word, '\\'));
}
#endif

/* Nothing in s[0:n] that a JSON string escapes. */
static int json_plain(const char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
#if SWAR
    for (; i + 8 <= n; i += 8)
        if (!word_plain(load8(s + i))) return 0;
    if (i == n) return 1;
    /* The rest in one more word, overlapping what was checked (or built of two 4-byte loads). */
    if (n >= 8) return word_plain(load8(s + n - 8));
    if (n >= 4) return word_plain(load4(s) | load4(s + n - 4) << 32);
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') return 0;
    }
    return 1;
}

/* local@label(.label)+ with label = [A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])? */
static int email_ok(const char *s, Py_ssize_t n) {
    if (n > EMAIL_MAX) return 0;
    const char *at = memchr(s, '@', (size_t)n);
    if (at == NULL || at == s) return 0;
    for (const char *p = s; p < at; p++)
        if (!is_class(*p, C_LOCAL)) return 0;
    const char *p = at + 1, *end = s + n;
    int labels = 0;
    for (;;) {
        const char *start = p;
        while (p < end && *p != '.') {
            if (!is_class(*p, C_LABEL)) return 0;
            p++;
        }
        Py_ssize_t len = p - start;
        if (len < 1 || len > 63) return 0;
        if (!is_class(start[0], C_ALNUM) || !is_class(p[-1], C_ALNUM)) return 0;
        labels++;
        if (p == end) break;
        p++; /* the dot: a label must follow */
    }
    return labels >= 2;
}

/* -?[0-9]{1,18} as str(int(text)) writes it: no leading zeros, no "-0" (at most n bytes, in room
 * reserved). 1: written, 0: not an int of that form. */
static int put_int(Buffer *b, const char *s, Py_ssize_t n) {
    Py_ssize_t i = (n > 0 && s[0] == '-') ? 1 : 0, digits = n - i;
    if (digits < 1 || digits > 18) return 0;
    for (Py_ssize_t j = i; j < n; j++)
        if (!is_digit(s[j])) return 0;
    Py_ssize_t j = i;
    while (j < n - 1 && s[j] == '0') j++;
    if (n - j == 1 && s[j] == '0') {
        append(b, "0", 1);
        return 1;
    }
    if (i) append(b, "-", 1);
    append(b, s + j, n - j);
    return 1;
}

/* A number of the form -?[0-9]+(\.[0-9]+)? taken apart. */
typedef struct {
    int negative;
    const char *whole; /* the integer part without leading zeros */
    Py_ssize_t whole_len;
    const char *fraction; /* the fraction without trailing zeros */
    Py_ssize_t fraction_len;
} Number;

static int split_number(const char *s, Py_ssize_t n, Number *number) {
    Py_ssize_t i = 0;
    if (n > NUMBER_MAX) return 0;
    number->negative = n > 0 && s[0] == '-';
    i = number->negative;
    Py_ssize_t start = i;
    while (i < n && is_digit(s[i])) i++;
    if (i == start) return 0;
    Py_ssize_t end = i;
    while (start < end && s[start] == '0') start++;
    number->whole = s + start;
    number->whole_len = end - start;
    number->fraction = s + n;
    number->fraction_len = 0;
    if (i < n) {
        if (s[i] != '.') return 0;
        Py_ssize_t fraction = ++i;
        while (i < n && is_digit(s[i])) i++;
        if (i == fraction || i != n) return 0;
        while (i > fraction && s[i - 1] == '0') i--;
        number->fraction = s + fraction;
        number->fraction_len = i - fraction;
    }
    return 1;
}

/* repr(float(text)) without a double when that is the text itself, tidied: at most 15
 * significant digits (then no other decimal of as few digits rounds to the same double, so the
 * shortest repr is this one) and inside repr's fixed notation, 1e-4 <= |x| < 1e16, or zero.
 * *value: the double, exact by Clinger's fast path (an integer below 2^53 over an exact power of
 * ten). At most two bytes more than the text, in room reserved. 1: written, 0: not plain (the
 * caller takes CPython's way). */
static int put_plain(Buffer *b, const Number *number, double *value) {
    static const double tens[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                  1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *digits = number->fraction;
    Py_ssize_t leading = 0; /* zeros after the point before the first digit, when whole is 0 */
    if (number->whole_len == 0) {
        while (leading < number->fraction_len && digits[leading] == '0') leading++;
        if (number->fraction_len > 0 && leading > 3) return 0; /* below 1e-4 */
    }
    Py_ssize_t significant = number->whole_len + number->fraction_len - leading;
    if (significant > PLAIN_DIGITS || number->whole_len > 16) return 0;
    uint64_t mantissa = 0;
    for (Py_ssize_t i = 0; i < number->whole_len; i++)
        mantissa = mantissa * 10 + (uint64_t)(number->whole[i] - '0');
    for (Py_ssize_t i = 0; i < number->fraction_len; i++)
        mantissa = mantissa * 10 + (uint64_t)(digits[i] - '0');
    *value = (double)mantissa / tens[number->fraction_len];
    if (number->negative) *value = -*value;
    if (number->negative) append(b, "-", 1);
    if (number->whole_len == 0) append(b, "0", 1);
    else append(b, number->whole, number->whole_len);
    append(b, ".", 1);
    if (number->fraction_len == 0) append(b, "0", 1);
    else append(b, number->fraction, number->fraction_len);
    return 1;
}

/* float(text) and repr() by CPython itself (needs the GIL). 1: written, 0: not finite,
 * -1: error set. */
static int put_repr(Buffer *b, const char *s, Py_ssize_t n, double *value) {
    char text[NUMBER_MAX + 1];
    memcpy(text, s, (size_t)n);
    text[n] = '\0';
    char *end = NULL;
    double parsed = PyOS_string_to_double(text, &end, NULL);
    if (parsed == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (end != text + n || !isfinite(parsed)) return 0;
    char *repr = PyOS_double_to_string(parsed, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (repr == NULL) return -1;
    int written = put(b, repr, (Py_ssize_t)strlen(repr));
    PyMem_Free(repr);
    if (written < 0) {
        PyErr_NoMemory();
        return -1;
    }
    *value = parsed;
    return 1;
}

/* At most LINE_DIGITS bytes, in room reserved. */
static void put_line(Buffer *b, long long number) {
    char text[24], *p = text + sizeof text;
    unsigned long long rest = number < 0 ? 0ULL - (unsigned long long)number : (unsigned long long)number;
    do {
        *--p = (char)('0' + rest % 10);
        rest /= 10;
    } while (rest);
    if (number < 0) *--p = '-';
    append(b, p, text + sizeof text - p);
}

/* Remember what miss() made of `key` (both references are stolen); the entry, or NULL with an
 * error set. */
static const Entry *table_insert(Converter *self, Table *table, Py_ssize_t which, PyObject *key,
                                 PyObject *value) {
    const char *s = PyBytes_AS_STRING(key);
    Py_ssize_t n = PyBytes_GET_SIZE(key);
    uint64_t hash = hash_bytes(s, n);
    if (table->used >= self->memo_limit) table_clear(table);
    if (table_reserve(table) < 0) {
        Py_DECREF(key);
        Py_DECREF(value);
        PyErr_NoMemory();
        return NULL;
    }
    Cold *cold = &table->cold[table->used];
    *cold = (Cold){key, value, 0.0};
    size_t i = (size_t)hash & table->mask;
    while (table->slots[i].id != 0) i = (i + 1) & table->mask;
    Entry *entry = &table->slots[i];
    memset(entry, 0, sizeof *entry);
    entry->tag = (uint32_t)(hash >> 32);
    entry->id = (uint32_t)(++table->used);
    entry->key_len = n <= INLINE ? (uint8_t)n : LONG;
    if (n <= INLINE) memcpy(entry->key, s, (size_t)n);
    if (which == WHICH_REMOVAL) {
        int truth = PyObject_IsTrue(value);
        if (truth < 0) return NULL;
        entry->usable = 1;
        entry->flag = (uint8_t)truth;
    } else if (which == WHICH_MODIFIED) {
        entry->usable = PyFloat_Check(value);
        cold->number = entry->usable ? PyFloat_AS_DOUBLE(value) : 0.0;
    } else if (PyBytes_Check(value)) {
        Py_ssize_t len = PyBytes_GET_SIZE(value);
        entry->usable = 1;
        entry->len = len <= INLINE ? (uint8_t)len : LONG;
        if (len <= INLINE) memcpy(entry->text, PyBytes_AS_STRING(value), (size_t)len);
    }
    return entry;
}

/* miss(which, cells) for a list of new cells: its list of values, each remembered. */
static int table_learn(Converter *self, Table *table, Py_ssize_t which, PyObject *cells) {
    PyObject *values = PyObject_CallFunction(self->miss, "nO", which, cells);
    if (values == NULL) return -1;
    if (!PyList_Check(values) || PyList_GET_SIZE(values) != PyList_GET_SIZE(cells)) {
        Py_DECREF(values);
        PyErr_SetString(PyExc_TypeError, "miss() returns a list of one value per cell");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(cells); i++) {
        PyObject *key = PyList_GET_ITEM(cells, i), *value = PyList_GET_ITEM(values, i);
        Py_INCREF(key);
        Py_INCREF(value);
        if (table_insert(self, table, which, key, value) == NULL) {
            Py_DECREF(values);
            return -1;
        }
    }
    Py_DECREF(values);
    return 0;
}

/* The memo entry of a cell; with the GIL, a new cell is converted by miss() and remembered.
 * NULL: without the GIL, a cell not seen yet; with it, an error (set). */
static const Entry *memo_entry(Converter *self, Table *table, Py_ssize_t which, const char *s,
                               Py_ssize_t n, int gil) {
    if (table->last != NULL && entry_is(table, table->last, s, n)) return table->last;
    uint64_t hash = hash_bytes(s, n);
    const Entry *found = table_find(table, s, n, hash);
    if (found != NULL) table->last = found;
    if (found != NULL || !gil) return found;
    PyObject *cells = Py_BuildValue("[y#]", s, n);
    if (cells == NULL) return NULL;
    int learnt = table_learn(self, table, which, cells);
    Py_DECREF(cells);
    if (learnt < 0) return NULL;
    found = table_find(table, s, n, hash);
    if (found == NULL) PyErr_SetString(PyExc_RuntimeError, "a memo lost its value");
    return found;
}

/* New cells of a memo column: pending[table] collects them (a dict, for their order). */
static int note_cell(PyObject **pending, const Table *table, const char *s, Py_ssize_t n) {
    if (n == 0 || table_find(table, s, n, hash_bytes(s, n)) != NULL) return 0;
    if (*pending == NULL && (*pending = PyDict_New()) == NULL) return -1;
    PyObject *key = PyBytes_FromStringAndSize(s, n);
    if (key == NULL) return -1;
    int result = PyDict_SetItem(*pending, key, Py_None);
    Py_DECREF(key);
    return result;
}

static inline void put_fragment(Buffer *b, const Converter *self, Py_ssize_t index) {
    append(b, self->fragment_data[index], self->fragment_len[index]);
}

#define CELL(f) (line + starts[f]), (ends[f] - starts[f])
#define NOMEM(expr) \
    if ((expr) < 0) return gil ? (PyErr_NoMemory(), R_ERROR) : R_NOMEM

/* One row's event appended to `b` (R_EVENT; *stamp set when there is an update-time column),
 * or another verdict. Without the GIL (gil == 0) it calls no Python and answers R_GIL for rows
 * that need it. */
static int convert_row(Converter *self, const char *line, const Py_ssize_t *starts,
                       const Py_ssize_t *ends, long long line_number, Buffer *b, double *stamp,
                       int gil) {
    if (self->since_field >= 0) {
        Py_ssize_t f = self->since_field;
        if (ends[f] == starts[f]) return R_PYTHON;
        const Entry *modified = memo_entry(self, &self->modified, WHICH_MODIFIED, CELL(f), gil);
        if (modified == NULL) return gil ? R_ERROR : R_GIL;
        if (!modified->usable) return R_PYTHON;
        if (entry_number(&self->modified, modified) < self->since) return R_SKIPPED;
    }
    if (self->removal_field >= 0) {
        Py_ssize_t f = self->removal_field;
        if (ends[f] == starts[f]) {
            if (self->removal_empty) return R_PYTHON;
        } else {
            const Entry *removal = memo_entry(self, &self->removal, WHICH_REMOVAL, CELL(f), gil);
            if (removal == NULL) return gil ? R_ERROR : R_GIL;
            if (removal->flag) return R_PYTHON;
        }
    }
    Py_ssize_t start = b->len;
    /* Room for the row's event: cells hold at most the line's bytes (the last field ends it)
     * and no slot adds more than SLOT_EXTRA to its cell, but for memo texts and CPython's
     * reprs, which are put with a check of their own and then the room made again. */
    Py_ssize_t room = self->fragment_bytes + ends[self->width - 1] + SLOT_EXTRA * self->nslots;
    NOMEM(reserve(b, room));
    for (Py_ssize_t i = 0; i < self->nslots; i++) {
        Slot *slot = &self->slots[i];
        put_fragment(b, self, i);
        if (slot->kind == K_LINE) {
            put_line(b, line_number);
            continue;
        }
        const char *s = line + starts[slot->field];
        Py_ssize_t n = ends[slot->field] - starts[slot->field];
        if (n == 0) return R_PYTHON; /* empty cells: Python knows what they mean */
        switch (slot->kind) {
        case K_ID:
        case K_STRING:
            if (!json_plain(s, n)) return R_PYTHON;
            append(b, s, n);
            break;
        case K_EMAIL:
            if (!email_ok(s, n)) return R_PYTHON;
            append(b, s, n);
            break;
        case K_INT:
            if (!put_int(b, s, n)) return R_PYTHON;
            break;
        case K_FLOAT:
        case K_TS: {
            Number number;
            double value = 0.0;
            if (!split_number(s, n, &number)) return R_PYTHON;
            int written = put_plain(b, &number, &value);
            if (!written) {
                if (!gil) return R_GIL;
                written = put_repr(b, s, n, &value);
                if (written < 0) return R_ERROR;
                if (!written) return R_PYTHON;
                NOMEM(reserve(b, room));
            }
            if (slot->kind == K_TS) {
                if (!(value >= 0.0 && value <= self->latest)) return R_PYTHON;
                *stamp = value;
            }
            break;
        }
        case K_MEMO: {
            const Entry *entry = memo_entry(self, &slot->memo, i, s, n, gil);
            if (entry == NULL) return gil ? R_ERROR : R_GIL;
            if (!entry->usable) return R_PYTHON; /* empty or not convertible */
            NOMEM(put(b, entry_text(&slot->memo, entry), entry_len(&slot->memo, entry)));
            NOMEM(reserve(b, room));
            break;
        }
        default:
            return R_PYTHON;
        }
    }
    put_fragment(b, self, self->nslots);
    return b->len - start <= self->max_bytes ? R_EVENT : R_PYTHON;
}
#undef CELL
#undef NOMEM

/* Split at the delimiter: the number of fields; the first `width` are recorded. (Eight bytes
 * at a time: fields are short, memchr per field costs more.) */
static Py_ssize_t split(const char *line, Py_ssize_t length, char delimiter, Py_ssize_t width,
                        Py_ssize_t *starts, Py_ssize_t *ends) {
    Py_ssize_t fields = 0, start = 0, i = 0;
#define FIELD_ENDS_AT(at)               \
    do {                                \
        if (fields < width) {           \
            starts[fields] = start;     \
            ends[fields] = (at);        \
        }                               \
        fields++;                       \
        start = (at) + 1;               \
    } while (0)
#if SWAR
    for (; i + 8 <= length; i += 8) {
        uint64_t word;
        memcpy(&word, line + i, 8);
        for (uint64_t found = bytes_equal(word, (unsigned char)delimiter); found;
             found &= found - 1)
            FIELD_ENDS_AT(i + (__builtin_ctzll(found) >> 3));
    }
#endif
    for (; i < length; i++)
        if (line[i] == delimiter) FIELD_ENDS_AT(i);
#undef FIELD_ENDS_AT
    if (fields < width) {
        starts[fields] = start;
        ends[fields] = length;
    }
    return fields + 1;
}

/* Start loading the table slots a row will look up (its memo cells, its id in the duplicate
 * index): they are all over tables larger than the cache, and a lookup otherwise waits for
 * memory. Only a hint: nothing is read or written. */
static void prefetch_row(const Converter *self, const char *line, const Py_ssize_t *starts,
                         const Py_ssize_t *ends, const KeyIndex *index) {
#if defined(__GNUC__)
    for (Py_ssize_t i = 0; i < self->nslots; i++) {
        const Slot *slot = &self->slots[i];
        if (slot->kind != K_MEMO || slot->memo.slots == NULL) continue;
        Py_ssize_t f = slot->field;
        uint64_t hash = hash_bytes(line + starts[f], ends[f] - starts[f]);
        __builtin_prefetch(&slot->memo.slots[hash & slot->memo.mask]);
    }
    if (index != NULL && index->slots != NULL) {
        Py_ssize_t f = self->id_field;
        uint64_t hash = hash_bytes(line + starts[f], ends[f] - starts[f]);
        __builtin_prefetch(&index->slots[hash & index->mask]);
    }
#else
    (void)self, (void)line, (void)starts, (void)ends, (void)index;
#endif
}

/* Where the block's lines are (rows[].start, length; verdicts reset): the number of lines found,
 * count + 1 when there are more. */
static Py_ssize_t find_rows(const char *data, Py_ssize_t size, Row *rows, Py_ssize_t count) {
    Py_ssize_t pos = 0;
    for (Py_ssize_t r = 0; r < count; r++) {
        if (pos >= size) return r;
        const char *newline = memchr(data + pos, '\n', (size_t)(size - pos));
        Py_ssize_t length = newline ? newline - (data + pos) : size - pos;
        rows[r].start = pos;
        rows[r].length = length;
        rows[r].verdict = -1;
        rows[r].stamp = 0.0;
        rows[r].event = rows[r].event_length = 0;
        pos += length + 1;
    }
    return pos < size ? count + 1 : count;
}

/* The rows whose verdict is `pending` (-1: not converted yet), converted with or without the
 * GIL. `starts` and `ends` have room for two rows: the next row is split (and its lookups
 * prefetched) before this one is converted. */
static int convert_rows(Converter *self, const char *block, Row *rows, Py_ssize_t count,
                        Buffer *b, Py_ssize_t *starts, Py_ssize_t *ends, KeyIndex *index,
                        int pending, int gil) {
    Py_ssize_t width = self->width, split_row = -1, fields = 0;
#define PENDING(r) (rows[r].verdict == pending)
    for (Py_ssize_t r = 0; r < count; r++) {
        Row *row = &rows[r];
        if (!PENDING(r)) continue;
        const char *line = block + row->start;
        if (split_row != r) fields = split(line, row->length, self->delimiter, width, starts, ends);
        Py_ssize_t next = r + 1;
        while (next < count && !PENDING(next)) next++;
        Py_ssize_t next_fields = 0;
        if (next < count) {
            const char *next_line = block + rows[next].start;
            next_fields = split(next_line, rows[next].length, self->delimiter, width,
                                starts + width, ends + width);
            if (next_fields == width) prefetch_row(self, next_line, starts + width, ends + width, index);
        }
        if (fields != width) {
            row->verdict = R_PYTHON;
        } else {
            Py_ssize_t mark = b->len;
            row->event = mark;
            row->verdict = convert_row(self, line, starts, ends, row->number, b, &row->stamp, gil);
            if (row->verdict == R_ERROR || row->verdict == R_NOMEM) return row->verdict;
            if (row->verdict == R_EVENT) {
                row->event_length = b->len - mark;
                row->key = row->start + starts[self->id_field];
                row->key_length = ends[self->id_field] - starts[self->id_field];
                if (index != NULL && KeyIndex_add_one(index, block + row->key, row->key_length,
                                                      row->number, row->stamp, self->has_ts) < 0) {
                    if (gil) PyErr_NoMemory();
                    return R_NOMEM;
                }
            } else {
                b->len = mark; /* drop what was written */
            }
        }
        if (next < count) { /* the next row's fields move to the front */
            memcpy(starts, starts + width, sizeof(Py_ssize_t) * (size_t)width);
            memcpy(ends, ends + width, sizeof(Py_ssize_t) * (size_t)width);
            split_row = next;
            fields = next_fields;
        }
    }
#undef PENDING
    return 0;
}

/* The memo cells the rows left for the GIL have not seen yet, converted by one miss() call per
 * memo column (a call per cell costs several times more). */
static int learn_cells(Converter *self, const char *block, Row *rows, Py_ssize_t count,
                       Py_ssize_t *starts, Py_ssize_t *ends) {
    Py_ssize_t tables = self->nslots + 2; /* slots, then removal, then modified-at */
    PyObject **pending = PyMem_Calloc((size_t)tables, sizeof(PyObject *));
    int result = -1;
    if (pending == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t r = 0; r < count; r++) {
        if (rows[r].verdict != R_GIL) continue;
        const char *line = block + rows[r].start;
        if (split(line, rows[r].length, self->delimiter, self->width, starts, ends) != self->width)
            continue;
#define NOTE(index, table, f) \
    if (note_cell(&pending[index], table, line + starts[f], ends[f] - starts[f]) < 0) goto done
        if (self->since_field >= 0) NOTE(tables - 1, &self->modified, self->since_field);
        if (self->removal_field >= 0) NOTE(tables - 2, &self->removal, self->removal_field);
        for (Py_ssize_t i = 0; i < self->nslots; i++)
            if (self->slots[i].kind == K_MEMO) NOTE(i, &self->slots[i].memo, self->slots[i].field);
#undef NOTE
    }
    for (Py_ssize_t t = 0; t < tables; t++) {
        if (pending[t] == NULL) continue;
        PyObject *cells = PyDict_Keys(pending[t]);
        if (cells == NULL) goto done;
        Table *table = t == tables - 1 ? &self->modified
                       : t == tables - 2 ? &self->removal
                                         : &self->slots[t].memo;
        Py_ssize_t which = t == tables - 1 ? WHICH_MODIFIED : t == tables - 2 ? WHICH_REMOVAL : t;
        int learnt = table_learn(self, table, which, cells);
        Py_DECREF(cells);
        if (learnt < 0) goto done;
    }
    result = 0;
done:
    for (Py_ssize_t t = 0; t < tables; t++) Py_XDECREF(pending[t]);
    PyMem_Free(pending);
    return result;
}

/* A range(first, first + count) of line numbers (what a block chunk's lines are): 1, and its
 * first number and length, without making a list of them; 0 for any other sequence. */
static int consecutive(PyObject *lines, long long *first, Py_ssize_t *count) {
    if (!PyRange_Check(lines)) return 0;
    PyObject *start = PyObject_GetAttrString(lines, "start");
    PyObject *step = PyObject_GetAttrString(lines, "step");
    int overflow = 0;
    long long one = step ? PyLong_AsLongLongAndOverflow(step, &overflow) : 0;
    *first = start ? PyLong_AsLongLongAndOverflow(start, &overflow) : 0;
    *count = PyObject_Size(lines);
    Py_XDECREF(start);
    Py_XDECREF(step);
    if (PyErr_Occurred()) PyErr_Clear(); /* the general way reports what is wrong */
    else if (start && step && !overflow && one == 1 && *count >= 0 &&
             *first <= LLONG_MAX - *count)
        return 1;
    return 0;
}

static PyObject *Converter_convert(Converter *self, PyObject *args) {
    Py_buffer block;
    PyObject *lines_arg, *index_arg = Py_None;
    if (!PyArg_ParseTuple(args, "y*O|O:convert", &block, &lines_arg, &index_arg)) return NULL;
    KeyIndex *index = NULL;
    if (index_arg != Py_None) {
        if (!PyObject_TypeCheck(index_arg, &KeyIndexType)) {
            PyBuffer_Release(&block);
            PyErr_SetString(PyExc_TypeError, "index: a KeyIndex or None");
            return NULL;
        }
        index = (KeyIndex *)index_arg;
    }
    if (self->busy || (index != NULL && index->busy)) {
        PyBuffer_Release(&block);
        PyErr_SetString(PyExc_RuntimeError, "convert() is already running on this converter");
        return NULL;
    }
    const char *data = block.buf;
    Py_ssize_t size = block.len;
    Buffer b = self->events;
    b.len = 0;
    Row *rows = NULL;
    Py_ssize_t *starts = NULL, *ends = NULL, skipped = 0, events = 0;
    PyObject *lines = NULL, *keys = NULL, *payloads = NULL, *out_lines = NULL, *stamps = NULL;
    PyObject *fallback = NULL, *result = NULL;
    int failed = 0;
    self->busy = 1;
    if (index != NULL) index->busy = 1;

    long long first = 0;
    Py_ssize_t count = 0;
    int ranged = consecutive(lines_arg, &first, &count);
    if (!ranged) {
        lines = PySequence_Fast(lines_arg, "lines must be a sequence");
        if (lines == NULL) goto done;
        count = PySequence_Fast_GET_SIZE(lines);
    }
    if (count > self->rows_cap) {
        PyMem_RawFree(self->rows);
        self->rows_cap = 0;
        if ((self->rows = PyMem_RawMalloc(sizeof(Row) * (size_t)count)) != NULL)
            self->rows_cap = count;
    }
    rows = self->rows;
    starts = PyMem_RawMalloc(sizeof(Py_ssize_t) * 2 * (size_t)self->width); /* two rows */
    ends = PyMem_RawMalloc(sizeof(Py_ssize_t) * 2 * (size_t)self->width);
    if ((rows == NULL && count > 0) || starts == NULL || ends == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = 0; r < count; r++) {
        rows[r].number = ranged ? first + r : PyLong_AsLongLong(PySequence_Fast_GET_ITEM(lines, r));
        if (rows[r].number == -1 && PyErr_Occurred()) goto done;
    }

    Py_ssize_t lines_found;
    Py_BEGIN_ALLOW_THREADS
    lines_found = find_rows(data, size, rows, count);
    if (lines_found == count) failed = convert_rows(self, data, rows, count, &b, starts, ends,
                                                    index, -1, 0);
    Py_END_ALLOW_THREADS
    if (lines_found != count) {
        PyErr_SetString(PyExc_ValueError, lines_found < count
                                              ? "the block holds fewer lines than given"
                                              : "the block holds more lines than given");
        goto done;
    }
    if (failed == R_NOMEM) {
        PyErr_NoMemory();
        goto done;
    }
    if (learn_cells(self, data, rows, count, starts, ends) < 0) goto done;
    /* The rows that met new memo cells, now known, without the GIL again when they are many
     * (the first chunks of a file); what is left (CPython's float reprs) with it. */
    Py_ssize_t waiting = 0;
    for (Py_ssize_t r = 0; r < count; r++) waiting += rows[r].verdict == R_GIL;
    if (waiting >= GIL_FREE_ROWS) {
        Py_BEGIN_ALLOW_THREADS
        failed = convert_rows(self, data, rows, count, &b, starts, ends, index, R_GIL, 0);
        Py_END_ALLOW_THREADS
        if (failed == R_NOMEM) {
            PyErr_NoMemory();
            goto done;
        }
    }
    if (convert_rows(self, data, rows, count, &b, starts, ends, index, R_GIL, 1) != 0) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }

    for (Py_ssize_t r = 0; r < count; r++) {
        if (rows[r].verdict == R_EVENT) events++;
        if (rows[r].verdict == R_SKIPPED) skipped++;
    }
    keys = PyList_New(events);
    payloads = PyList_New(events);
    out_lines = PyList_New(events);
    fallback = PyList_New(0);
    stamps = self->has_ts ? PyList_New(events) : Py_NewRef(Py_None);
    if (keys == NULL || payloads == NULL || out_lines == NULL || fallback == NULL || stamps == NULL)
        goto done;
    Py_ssize_t event = 0;
    for (Py_ssize_t r = 0; r < count; r++) {
        Row *row = &rows[r];
        if (row->verdict != R_PYTHON && row->verdict != R_EVENT) continue;
        PyObject *number = ranged ? PyLong_FromLongLong(row->number)
                                  : Py_NewRef(PySequence_Fast_GET_ITEM(lines, r));
        if (number == NULL) goto done;
        if (row->verdict == R_PYTHON) {
            PyObject *raw = PyBytes_FromStringAndSize(data + row->start, row->length);
            PyObject *pair = raw ? PyTuple_Pack(2, number, raw) : NULL;
            Py_XDECREF(raw);
            Py_DECREF(number);
            if (pair == NULL || PyList_Append(fallback, pair) < 0) {
                Py_XDECREF(pair);
                goto done;
            }
            Py_DECREF(pair);
            continue;
        }
        PyObject *key = PyBytes_FromStringAndSize(data + row->key, row->key_length);
        PyObject *payload = PyBytes_FromStringAndSize(b.data + row->event, row->event_length);
        if (key == NULL || payload == NULL) {
            Py_XDECREF(key);
            Py_XDECREF(payload);
            Py_DECREF(number);
            goto done;
        }
        PyList_SET_ITEM(keys, event, key);
        PyList_SET_ITEM(payloads, event, payload);
        PyList_SET_ITEM(out_lines, event, number);
        if (self->has_ts) {
            PyObject *stamp = PyFloat_FromDouble(row->stamp);
            if (stamp == NULL) goto done;
            PyList_SET_ITEM(stamps, event, stamp);
        }
        event++;
    }
    result = Py_BuildValue("OOOOOn", keys, payloads, out_lines, stamps, fallback, skipped);
done:
    self->busy = 0;
    if (index != NULL) index->busy = 0;
    PyBuffer_Release(&block);
    if (b.cap > KEPT_BYTES) { /* an odd chunk of huge rows: not kept */
        PyMem_RawFree(b.data);
        b = (Buffer){NULL, 0, 0};
    }
    self->events = b;
    PyMem_RawFree(starts);
    PyMem_RawFree(ends);
    Py_XDECREF(lines);
    Py_XDECREF(keys);
    Py_XDECREF(payloads);
    Py_XDECREF(out_lines);
    Py_XDECREF(stamps);
    Py_XDECREF(fallback);
    return result;
}

static void Converter_dealloc(Converter *self) {
    if (self->slots != NULL) {
        for (Py_ssize_t i = 0; i < self->nslots; i++) table_clear(&self->slots[i].memo);
        PyMem_Free(self->slots);
    }
    table_clear(&self->removal);
    table_clear(&self->modified);
    PyMem_RawFree(self->events.data);
    PyMem_RawFree(self->rows);
    PyMem_Free(self->fragment_data);
    PyMem_Free(self->fragment_len);
    Py_XDECREF(self->fragments);
    Py_XDECREF(self->miss);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Converter_init(Converter *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"delimiter", "width", "fragments", "slots", "removal", "since",
                            "latest", "max_bytes", "miss", "memo_limit", NULL};
    PyObject *fragments, *slots, *removal, *since, *miss;
    int delimiter;
    Py_ssize_t memo_limit;
    if (self->slots != NULL || self->fragments != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a converter is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "inO!O!OOdnOn:Converter", names, &delimiter,
                                     &self->width, &PyTuple_Type, &fragments, &PyTuple_Type,
                                     &slots, &removal, &since, &self->latest, &self->max_bytes,
                                     &miss, &memo_limit))
        return -1;
    if (delimiter < 1 || delimiter > 127 || delimiter == '\n' || self->width < 1 ||
        memo_limit < 1 || !PyCallable_Check(miss)) {
        PyErr_SetString(PyExc_ValueError, "an ASCII delimiter, width >= 1, memo_limit >= 1, "
                                          "a callable miss");
        return -1;
    }
    self->delimiter = (char)delimiter;
    self->memo_limit = (size_t)memo_limit;
    self->nslots = PyTuple_GET_SIZE(slots);
    if (PyTuple_GET_SIZE(fragments) != self->nslots + 1) {
        PyErr_SetString(PyExc_ValueError, "one fragment more than slots");
        return -1;
    }
    for (Py_ssize_t i = 0; i <= self->nslots; i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(fragments, i))) {
            PyErr_SetString(PyExc_TypeError, "fragments are bytes");
            return -1;
        }
    }
    self->slots = PyMem_Calloc((size_t)self->nslots + 1, sizeof(Slot));
    if (self->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->fragments = Py_NewRef(fragments);
    self->fragment_data = PyMem_Calloc((size_t)self->nslots + 1, sizeof(const char *));
    self->fragment_len = PyMem_Calloc((size_t)self->nslots + 1, sizeof(Py_ssize_t));
    if (self->fragment_data == NULL || self->fragment_len == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i <= self->nslots; i++) {
        PyObject *fragment = PyTuple_GET_ITEM(fragments, i); /* kept alive by self->fragments */
        self->fragment_data[i] = PyBytes_AS_STRING(fragment);
        self->fragment_len[i] = PyBytes_GET_SIZE(fragment);
        self->fragment_bytes += self->fragment_len[i];
    }
    self->miss = Py_NewRef(miss);
    self->id_field = -1;
    for (Py_ssize_t i = 0; i < self->nslots; i++) {
        Slot *slot = &self->slots[i];
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(slots, i), "in:slot", &slot->kind, &slot->field))
            return -1;
        if (slot->kind < K_ID || slot->kind > K_MEMO ||
            (slot->kind != K_LINE && (slot->field < 0 || slot->field >= self->width))) {
            PyErr_SetString(PyExc_ValueError, "a slot of an unknown kind or field");
            return -1;
        }
        if (slot->kind == K_ID) self->id_field = slot->field;
        if (slot->kind == K_TS) self->has_ts = 1;
    }
    if (self->id_field < 0) {
        PyErr_SetString(PyExc_ValueError, "no id slot");
        return -1;
    }
    self->removal_field = self->since_field = -1;
    if (removal != Py_None &&
        !PyArg_ParseTuple(removal, "np:removal", &self->removal_field, &self->removal_empty))
        return -1;
    if (since != Py_None &&
        !PyArg_ParseTuple(since, "nd:since", &self->since_field, &self->since))
        return -1;
    if (self->removal_field >= self->width || self->since_field >= self->width ||
        self->removal_field < -1 || self->since_field < -1) {
        PyErr_SetString(PyExc_ValueError, "a field out of range");
        return -1;
    }
    return 0;
}

static PyMethodDef Converter_methods[] = {
    {"convert", (PyCFunction)Converter_convert, METH_VARARGS,
     "convert(block, lines) -> (keys, payloads, lines, stamps, fallback, skipped)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ConverterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streams.bootstrap._csvfast.Converter",
    .tp_basicsize = sizeof(Converter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Plain CSV lines to change events (see streams/bootstrap/native.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Converter_init,
    .tp_dealloc = (destructor)Converter_dealloc,
    .tp_methods = Converter_methods,
};



static PyObject *KeyIndex_add(KeyIndex *self, PyObject *args) {
    PyObject *keys_arg, *lines_arg, *stamps_arg, *keys = NULL, *lines = NULL, *stamps = NULL;
    PyObject *result = NULL;
    Pending *rows = NULL;
    if (!PyArg_ParseTuple(args, "OOO:add", &keys_arg, &lines_arg, &stamps_arg)) return NULL;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "add() is already running on this index");
        return NULL;
    }
    keys = PySequence_Fast(keys_arg, "keys must be a sequence");
    lines = keys ? PySequence_Fast(lines_arg, "lines must be a sequence") : NULL;
    if (lines == NULL) goto done;
    if (stamps_arg != Py_None && (stamps = PySequence_Fast(stamps_arg, "stamps: a sequence")) == NULL)
        goto done;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(keys);
    if (PySequence_Fast_GET_SIZE(lines) != count ||
        (stamps != NULL && PySequence_Fast_GET_SIZE(stamps) != count)) {
        PyErr_SetString(PyExc_ValueError, "keys, lines and stamps of different lengths");
        goto done;
    }
    rows = PyMem_RawMalloc(sizeof(Pending) * (size_t)(count ? count : 1));
    if (rows == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PySequence_Fast_GET_ITEM(keys, i);
        if (!PyBytes_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "keys are bytes");
            goto done;
        }
        Pending *row = &rows[i];
        row->key = PyBytes_AS_STRING(key);
        row->n = PyBytes_GET_SIZE(key);
        row->line = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(lines, i));
        if (row->line == -1 && PyErr_Occurred()) goto done;
        row->stamp = 0.0;
        row->stamped = 0;
        if (stamps != NULL) {
            PyObject *value = PySequence_Fast_GET_ITEM(stamps, i);
            if (value != Py_None) {
                row->stamp = PyFloat_AsDouble(value);
                if (row->stamp == -1.0 && PyErr_Occurred()) goto done;
                row->stamped = 1;
            }
        }
    }
    /* The hash table is all cache misses: the reader thread runs it while others hold the GIL
     * (`keys` keeps the bytes alive; `busy` keeps a second caller out). */
    int failed = 0;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count && !failed; i++)
        failed = KeyIndex_add_one(self, rows[i].key, rows[i].n, rows[i].line, rows[i].stamp,
                                  rows[i].stamped) < 0;
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(rows);
    Py_XDECREF(keys);
    Py_XDECREF(lines);
    Py_XDECREF(stamps);
    return result;
}

static int loss_order(const void *a, const void *b) {
    long long x = ((const Loss *)a)->line, y = ((const Loss *)b)->line;
    return (x > y) - (x < y);
}

/* losses() -> [(line, kept_line, same_time)] by line: every row that lost to its id's newest,
 * against the newest of all rows added so far; the losses are then forgotten. */
static PyObject *KeyIndex_losses(KeyIndex *self, PyObject *Py_UNUSED(ignored)) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "add() is running on this index");
        return NULL;
    }
    qsort(self->losses, (size_t)self->nlosses, sizeof(Loss), loss_order);
    PyObject *list = PyList_New(self->nlosses);
    if (list == NULL) return NULL;
    for (Py_ssize_t i = 0; i < self->nlosses; i++) {
        const Loss *loss = &self->losses[i];
        const Seen *kept = &self->winners[loss->id].seen;
        int same = !(loss->stamped && kept->stamped) || loss->stamp == kept->stamp;
        PyObject *item = Py_BuildValue("LLO", loss->line, kept->line, same ? Py_True : Py_False);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    self->nlosses = 0;
    return list;
}

static void KeyIndex_dealloc(KeyIndex *self) {
    PyMem_RawFree(self->slots);
    PyMem_RawFree(self->winners);
    PyMem_RawFree(self->losses);
    PyMem_RawFree(self->arena);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef KeyIndex_methods[] = {
    {"add", (PyCFunction)KeyIndex_add, METH_VARARGS,
     "add(keys, lines, stamps or None): rows about to be produced"},
    {"losses", (PyCFunction)KeyIndex_losses, METH_NOARGS,
     "losses() -> [(line, kept_line, same_time)]: the rows that lost so far, by line"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KeyIndexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streams.bootstrap._csvfast.KeyIndex",
    .tp_basicsize = sizeof(KeyIndex),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Duplicate ids: per id the newest row (update time, else line) and the losers.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)KeyIndex_dealloc,
    .tp_methods = KeyIndex_methods,
};

/* ---- reading helpers for CsvSource (see files.py: ByteLines, CsvSource._block) ---- */

/* line_end(buffer, pos, count) -> (end, found): the position after the count-th newline from
 * pos, or after the last one there is, and how many were found. */
static PyObject *line_end(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer buffer;
    Py_ssize_t pos, count, found = 0;
    if (!PyArg_ParseTuple(args, "y*nn:line_end", &buffer, &pos, &count)) return NULL;
    if (pos < 0 || pos > buffer.len || count < 0) {
        PyBuffer_Release(&buffer);
        PyErr_SetString(PyExc_ValueError, "pos outside the buffer or a negative count");
        return NULL;
    }
    const char *data = buffer.buf;
    Py_ssize_t end = pos;
    while (found < count) {
        const char *newline = memchr(data + end, '\n', (size_t)(buffer.len - end));
        if (newline == NULL) break;
        end = newline - data + 1;
        found++;
    }
    PyBuffer_Release(&buffer);
    return Py_BuildValue("nn", end, found);
}

/* What scan_block finds in a block (files.py has the same numbers). */
#define SCAN_QUOTE 1    /* a '"': the csv module's parsing is needed */
#define SCAN_LONE_CR 2  /* a CR not before a LF: a line end csv knows and we do not */
#define SCAN_CRLF 4     /* CRLF line ends: to be made LF, then the block scanned again */
#define SCAN_NOT_UTF8 8 /* bytes strict UTF-8 decoding refuses */

/* Strict UTF-8 as bytes.decode() takes it: no overlong forms, no surrogates, <= U+10FFFF. */
static int utf8_valid(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t word;
            memcpy(&word, s + i, 8);
            if ((word & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        Py_ssize_t more;
        unsigned char low = 0x80, high = 0xBF; /* the range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) more = 1;
        else if (c == 0xE0) more = 2, low = 0xA0;
        else if (c == 0xED) more = 2, high = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF) more = 2;
        else if (c == 0xF0) more = 3, low = 0x90;
        else if (c == 0xF4) more = 3, high = 0x8F;
        else if (c >= 0xF1 && c <= 0xF3) more = 3;
        else return 0;
        if (i + more >= n) return 0; /* cut short by the end */
        if (s[i + 1] < low || s[i + 1] > high) return 0;
        for (Py_ssize_t k = 2; k <= more; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        i += more + 1;
    }
    return 1;
}

/* scan_block(block, delimiter, width) -> (flags, [(index, fields)]): what stops a block from
 * being read as plain lines (SCAN_* flags), and, when nothing about its line ends does, its
 * lines (LF ends) that are blank (fields 0) or have another number of fields than width. One
 * pass of each kind, all without the GIL (a block is megabytes). */
static PyObject *scan_block(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer block;
    int delimiter;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*in:scan_block", &block, &delimiter, &width)) return NULL;
    Py_ssize_t *odd = NULL, count = 0, cap = 0;
    int flags = 0, failed = 0;
    Py_BEGIN_ALLOW_THREADS
    const char *data = block.buf, *end = data + block.len;
    if (block.len > 0 && memchr(data, '"', (size_t)block.len) != NULL) flags |= SCAN_QUOTE;
    for (const char *cr = block.len > 0 ? memchr(data, '\r', (size_t)block.len) : NULL;
         cr != NULL; cr = memchr(cr + 1, '\r', (size_t)(end - cr - 1)))
        flags |= cr + 1 < end && cr[1] == '\n' ? SCAN_CRLF : SCAN_LONE_CR;
    if (!utf8_valid((const unsigned char *)data, block.len)) flags |= SCAN_NOT_UTF8;
    Py_ssize_t index = 0;
    for (const char *line = data; !(flags & (SCAN_QUOTE | SCAN_LONE_CR | SCAN_CRLF)) && line < end;
         index++) {
        const char *newline = memchr(line, '\n', (size_t)(end - line));
        const char *stop = newline ? newline : end;
        Py_ssize_t fields = 0;
        if (stop > line) {
            fields = 1 + count_byte(line, stop - line, (char)delimiter);
        }
        if (fields != width || fields == 0) {
            if (count + 2 > cap) {
                Py_ssize_t next = cap ? cap * 2 : 64;
                Py_ssize_t *grown = PyMem_RawRealloc(odd, sizeof(Py_ssize_t) * (size_t)next);
                if (grown == NULL) {
                    failed = 1;
                    break;
                }
                odd = grown;
                cap = next;
            }
            odd[count++] = index;
            odd[count++] = fields;
        }
        line = stop + 1;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&block);
    PyObject *list = failed ? PyErr_NoMemory() : PyList_New(count / 2);
    for (Py_ssize_t i = 0; list != NULL && i < count / 2; i++) {
        PyObject *item = Py_BuildValue("nn", odd[2 * i], odd[2 * i + 1]);
        if (item == NULL) Py_CLEAR(list);
        else PyList_SET_ITEM(list, i, item);
    }
    PyMem_RawFree(odd);
    return list == NULL ? NULL : Py_BuildValue("iN", flags, list);
}

static PyMethodDef module_methods[] = {
    {"line_end", line_end, METH_VARARGS,
     "line_end(buffer, pos, count) -> (end, found): after the count-th newline from pos"},
    {"scan_block", scan_block, METH_VARARGS,
     "scan_block(block, delimiter, width) -> (flags, [(index, fields)]): what stops plain "
     "reading, else the blank lines (0) and lines of another width"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_csvfast", "Plain CSV lines to change events (see native.py).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__csvfast(void) {
    init_classes();
    if (PyType_Ready(&ConverterType) < 0 || PyType_Ready(&KeyIndexType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Converter", (PyObject *)&ConverterType) < 0 ||
        PyModule_AddObjectRef(m, "KeyIndex", (PyObject *)&KeyIndexType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
