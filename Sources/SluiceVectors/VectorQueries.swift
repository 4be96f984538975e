/// gensim 4.4's KeyedVectors queries with its rounding (`../shared/specs/word-vectors.md` §2):
/// the same words in the same order and scores within 2e-6 of gensim's. Dots accumulate in
/// Double and round once (gensim's OpenBLAS sgemv differs from it in the last bits only).
extension WordVectors {
    /// An input of most_similar: a key, or a raw vector, with its weight.
    public enum Term: Sendable {
        case key(String, weight: Double?)
        case vector([Float], weight: Double?)
    }

    /// One answer row: a key and its score (a float32 widened to Double, or a Double where
    /// gensim returns float64: cosmul without negatives).
    public struct Scored: Sendable, Equatable {
        public var key: String
        public var score: Double
    }

    // MARK: - Building blocks

    /// A dot product accumulated in Double, rounded once to Float.
    @inline(__always)
    static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        let n = a.count
        var lanes0 = SIMD4<Double>()
        var lanes1 = SIMD4<Double>()
        var index = 0
        let (rawA, rawB) = (UnsafeRawBufferPointer(a), UnsafeRawBufferPointer(b))
        while index + 8 <= n {
            let x = rawA.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            let y = rawB.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            lanes0 += SIMD4<Double>(x.lowHalf) * SIMD4<Double>(y.lowHalf)
            lanes1 += SIMD4<Double>(x.highHalf) * SIMD4<Double>(y.highHalf)
            index += 8
        }
        var total = (lanes0 + lanes1).sum()
        while index < n {
            total += Double(a[index]) * Double(b[index])
            index += 1
        }
        return Float(total)
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Float {
        a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in dot(x, y) } }
    }

    func dot(row index: Int, _ vector: UnsafeBufferPointer<Float>) -> Float {
        matrix.withUnsafeBufferPointer { all in
            Self.dot(UnsafeBufferPointer(rebasing: all[index * dim..<(index + 1) * dim]), vector)
        }
    }

    /// matutils.unitvec: in Double, multiplied by the reciprocal of the length, then float32;
    /// a zero vector stays zero.
    static func unitVector(_ vector: [Float]) -> [Float] {
        var squares = 0.0
        for value in vector { squares += Double(value) * Double(value) }
        return unitVector(double: vector.map(Double.init), length: squares.squareRoot())
    }

    static func unitVector(double vector: [Double], length: Double? = nil) -> [Float] {
        let length = length ?? vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard length > 0 else { return vector.map { Float($0) } }
        let scale = 1.0 / length
        return vector.map { Float($0 * scale) }
    }

    func requireIndex(_ key: String, inVocabulary: Bool = false) throws(VectorsError) -> Int {
        guard let index = index(of: key) else {
            throw VectorsError(.keyError, "Key '\(key)' not present\(inVocabulary ? " in vocabulary" : "")")
        }
        return index
    }

    /// Sorts by score descending, ties in index order, NaN last; keeps the best `topn` of
    /// `candidates` whose index is not excluded.
    static func top(
        _ topn: Int, scores: (Int) -> Double, candidates: Range<Int>, excluded: Set<Int>
    ) -> [(index: Int, score: Double)] {
        var best: [(index: Int, score: Double)] = []
        best.reserveCapacity(topn + 1)
        @inline(__always) func better(_ a: Double, _ ai: Int, than b: Double, _ bi: Int) -> Bool {
            if a.isNaN { return false }
            if b.isNaN { return true }
            return a > b || (a == b && ai < bi)
        }
        for index in candidates where !excluded.contains(index) {
            let score = scores(index)
            if best.count == topn {
                let last = best[topn - 1]
                guard better(score, index, than: last.score, last.index) else { continue }
                best.removeLast()
            }
            var position = best.count
            while position > 0 && better(score, index, than: best[position - 1].score, best[position - 1].index) {
                position -= 1
            }
            best.insert((index, score), at: position)
        }
        return best
    }

    // MARK: - Queries

    /// most_similar's target: the weighted mean of the inputs' unit rows (raw vectors as
    /// given), normalised; and the rows of the input keys.
    func meanVector(positive: [Term], negative: [Term]) throws(VectorsError) -> (mean: [Float], inputs: Set<Int>) {
        let terms = positive.map { ($0, 1.0) } + negative.map { ($0, -1.0) }
        guard !terms.isEmpty else { throw VectorsError(.valueError, "cannot compute mean with no input") }
        var sum = [Float](repeating: 0, count: dim)
        var totalWeight = 0.0
        var inputs = Set<Int>()
        for (term, sign) in terms {
            let unit: [Float]
            let weight: Double
            switch term {
            case .key(let key, let given):
                let index = try requireIndex(key, inVocabulary: true)
                inputs.insert(index)
                unit = unitRow(index)
                weight = given ?? sign
            case .vector(let vector, let given):
                guard vector.count == dim else {
                    throw VectorsError(.valueError, "a vector of \(vector.count) values; these vectors have \(dim)")
                }
                unit = vector
                weight = given ?? sign
            }
            // float32 += float64 × float32: one rounding per step, as numpy does it.
            for column in 0..<dim { sum[column] = Float(Double(sum[column]) + weight * Double(unit[column])) }
            totalWeight += abs(weight)
        }
        return (Self.unitVector(double: sum.map { Double($0) / totalWeight }), inputs)
    }

    /// The rows most_similar ranks: `[0, restrict_vocab)` if given, else the clips.
    func candidateRows(restrictVocab: Int?, clipStart: Int, clipEnd: Int?) -> Range<Int> {
        if let restrictVocab, restrictVocab > 0 { return 0..<min(restrictVocab, count) }
        let start = min(max(0, clipStart), count)
        return start..<max(start, min(clipEnd ?? count, count))
    }

    /// `most_similar(positive, negative, topn, restrict_vocab=…)` (clip_start/clip_end as given).
    public func mostSimilar(
        positive: [Term], negative: [Term] = [], topn: Int = 10, restrictVocab: Int? = nil, clipStart: Int = 0,
        clipEnd: Int? = nil
    ) throws(VectorsError) -> [Scored] {
        if topn < 1 { return [] }
        let (mean, inputs) = try meanVector(positive: positive, negative: negative)
        let range = candidateRows(restrictVocab: restrictVocab, clipStart: clipStart, clipEnd: clipEnd)
        return mean.withUnsafeBufferPointer { m in
            Self.top(topn, scores: { Double(dot(row: $0, m) / norms[$0]) }, candidates: range, excluded: inputs)
                .map { Scored(key: keys[$0.index], score: $0.score) }
        }
    }

    /// `most_similar(…, topn=None)`: every candidate row's score, in row order, inputs included.
    public func scores(
        positive: [Term], negative: [Term] = [], restrictVocab: Int? = nil, clipStart: Int = 0, clipEnd: Int? = nil
    ) throws(VectorsError) -> [Float] {
        let (mean, _) = try meanVector(positive: positive, negative: negative)
        let range = candidateRows(restrictVocab: restrictVocab, clipStart: clipStart, clipEnd: clipEnd)
        return mean.withUnsafeBufferPointer { m in range.map { dot(row: $0, m) / norms[$0] } }
    }

    /// `most_similar_cosmul(positive, negative, topn)` (Levy & Goldberg's 3CosMul); gensim
    /// accepts `restrict_vocab` and ignores it, and so does this.
    public func mostSimilarCosmul(positive: [Term], negative: [Term] = [], topn: Int? = 10) throws(VectorsError)
        -> [Scored]
    {
        if let topn, topn < 1 { return [] }
        guard !positive.isEmpty else { throw VectorsError(.valueError, "cannot compute similarity with no input") }
        var excluded = Set<Int>()
        func units(_ terms: [Term]) throws(VectorsError) -> [[Float]] {
            var result: [[Float]] = []
            for term in terms {
                switch term {
                case .key(let key, _):
                    let index = try requireIndex(key)
                    excluded.insert(index)
                    result.append(unitRow(index))
                case .vector(let vector, _):
                    guard vector.count == dim else {
                        throw VectorsError(.valueError, "a vector of \(vector.count) values; these vectors have \(dim)")
                    }
                    result.append(vector)
                }
            }
            return result
        }
        let positives = try units(positive)
        let negatives = try units(negative)
        func product(_ vectors: [[Float]], _ index: Int) -> Float {
            var product: Float = 1
            for (position, vector) in vectors.enumerated() {
                let cosine = vector.withUnsafeBufferPointer { dot(row: index, $0) } / norms[index]
                let shifted = (1 + cosine) / 2
                product = position == 0 ? shifted : product * shifted
            }
            return product
        }
        let score: (Int) -> Double
        if negatives.isEmpty {
            score = { Double(product(positives, $0)) / 1.000001 }
        } else {
            let epsilon = Float(1e-6)
            score = { Double(product(positives, $0) / (product(negatives, $0) + epsilon)) }
        }
        return Self.top(topn ?? count, scores: score, candidates: 0..<count, excluded: topn == nil ? [] : excluded)
            .map { Scored(key: keys[$0.index], score: $0.score) }
    }

    /// `similarity(w1, w2)`: the cosine of the two unit vectors, in float32.
    public func similarity(_ first: String, _ second: String) throws(VectorsError) -> Float {
        let a = Self.unitVector(Array(row(try requireIndex(first))))
        let b = Self.unitVector(Array(row(try requireIndex(second))))
        return Self.dot(a, b)
    }

    /// `distance(w1, w2)` = 1 − similarity, in float32.
    public func distance(_ first: String, _ second: String) throws(VectorsError) -> Float {
        1 - (try similarity(first, second))
    }

    /// `n_similarity(ws1, ws2)`: cosine of the means of the raw vectors (missing keys skipped).
    public func nSimilarity(_ first: [String], _ second: [String]) throws(VectorsError) -> Float {
        guard !first.isEmpty, !second.isEmpty else {
            throw VectorsError(.zeroDivisionError, "At least one of the passed list is empty.")
        }
        func mean(_ words: [String]) -> [Float] {
            var sum = [Float](repeating: 0, count: dim)
            var present = 0
            for word in words {
                guard let index = index(of: word) else { continue }
                for (column, value) in row(index).enumerated() { sum[column] += value }
                present += 1
            }
            guard present > 0 else { return sum }
            let divisor = Float(present)
            return sum.map { $0 / divisor }
        }
        return Self.dot(Self.unitVector(mean(first)), Self.unitVector(mean(second)))
    }

    /// `doesnt_match(words)`: the word farthest from the mean of the unit vectors; the
    /// ranking (`rank_by_centrality`) comes with it.
    public func doesntMatch(_ words: [String]) throws(VectorsError) -> (word: String, ranking: [Scored]) {
        let present = words.compactMap { word in index(of: word).map { (word, $0) } }
        guard !present.isEmpty else { throw VectorsError(.valueError, "cannot select a word from an empty list") }
        let units = present.map { unitRow($0.1) }
        var sum = [Float](repeating: 0, count: dim)
        for unit in units { for column in 0..<dim { sum[column] += unit[column] } }
        let divisor = Float(units.count)
        let center = Self.unitVector(sum.map { $0 / divisor })
        var ranking = zip(present, units).map { Scored(key: $0.0.0, score: Double(Self.dot($0.1, center))) }
        ranking.sort { a, b in
            a.score != b.score
                ? a.score > b.score
                : Array(a.key.unicodeScalars.map(\.value)).lexicographicallyPrecedes(
                    b.key.unicodeScalars.map(\.value), by: >)
        }
        return (ranking[ranking.count - 1].key, ranking)
    }

    /// `distances(key)` over every row: 1 − cosine, as gensim rounds it.
    public func distances(from key: String) throws(VectorsError) -> [Float] {
        let index = try requireIndex(key)
        let vector = Array(row(index))
        let length = Self.dot(vector, vector).squareRoot()
        return vector.withUnsafeBufferPointer { v in
            (0..<count).map { i in 1 - dot(row: i, v) / (length * norms[i]) }
        }
    }

    /// `closer_than(key1, key2)`: keys strictly closer to key1 than key2 is, in index order.
    public func closerThan(_ first: String, _ second: String) throws(VectorsError) -> [String] {
        let all = try distances(from: first)
        let own = try requireIndex(first)
        let threshold = all[try requireIndex(second)]
        return (0..<count).filter { $0 != own && all[$0] < threshold }.map { keys[$0] }
    }

    /// `rank(key1, key2)` = len(closer_than) + 1.
    public func rank(_ first: String, _ second: String) throws(VectorsError) -> Int {
        try closerThan(first, second).count + 1
    }

    /// `kv[key]`: the raw row.
    public func vector(_ key: String) throws(VectorsError) -> [Float] { Array(row(try requireIndex(key))) }

    /// `get_vector(key, norm=True)`.
    public func unitVector(_ key: String) throws(VectorsError) -> [Float] { unitRow(try requireIndex(key)) }

    /// `norms[index(key)]`.
    public func norm(_ key: String) throws(VectorsError) -> Float { norms[try requireIndex(key)] }
}
