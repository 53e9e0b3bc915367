/// A first-in first-out queue with amortized O(1) append and removal at the front, for the
/// replies a connection is waiting for (tens of thousands may be in flight).
struct FIFOQueue<Element> {
    // Popped slots are set to nil at once so their elements (continuations) are released;
    // the dead prefix is compacted away once it is at least half of the storage.
    private var storage: [Element?] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }
    var first: Element? { isEmpty ? nil : storage[head] }

    mutating func append(_ element: Element) {
        storage.append(element)
    }

    mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head]
        storage[head] = nil
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }
}
