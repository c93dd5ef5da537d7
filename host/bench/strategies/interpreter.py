# Pure interpreter work inside run(): arithmetic, a dict and str() in a
# loop, with the contact crossing the boundary once. Against native CPython
# (`BENCH_MODES=native,warm`) it measures the sandboxed interpreter itself,
# apart from the per-call costs that dominate the spec's small strategy.
def work(n):
    total = 0
    seen = {}
    for i in range(n):
        total += i * 3 % 7
        seen[i & 63] = total
        str(i)
    return total + len(seen)


async def run(contact, existing_contact, logger, **kwargs):
    contact.internal_data["total"] = work(3000)
    return contact
