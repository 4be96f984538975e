/// A token id. GPT-2's ids fit in 16 bits, but trained vocabularies may not, so ids are
/// carried as 32 bits and narrowed only when stored.
public typealias TokenID = UInt32
