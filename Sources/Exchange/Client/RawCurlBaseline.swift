import CCurl
import CurlHTTP
import Foundation

/// The baseline the client is measured against (`qt bench exchange`): the same signed MARKET
/// orders from one thread through one reused libcurl easy handle, with no Swift layer (no
/// async hop, no retry policy, no JSON decoding). For benchmarks only.
public enum RawCurlBaseline {
    /// Sends `count` orders alternating BUY and SELL of `quantity`; returns seconds.
    public static func signedOrders(baseURL: String, credentials: Credentials, symbol: String, quantity: Decimal,
                                    count: Int, idPrefix: String) throws -> Double {
        CurlGlobal.initialize()
        guard let curl = curl_easy_init() else { throw ExchangeError.invalidRequest("curl_easy_init failed") }
        defer { curl_easy_cleanup(curl) }
        let headers: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "X-MBX-APIKEY: \(credentials.apiKey)")
        defer { curl_slist_free_all(headers) }
        _ = qt_curl_set_pointer(curl, CURLOPT_HTTPHEADER, headers)
        _ = qt_curl_set_pointer(curl, CURLOPT_CUSTOMREQUEST, "POST")
        CurlGlobal.sendEmptyBody(curl)
        _ = qt_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        _ = qt_curl_set_long(curl, CURLOPT_TCP_NODELAY, 1)
        // The answer is read and dropped (its size counted, so the last one can be quoted in an error).
        let lastAnswer = UnsafeMutablePointer<UInt8>.allocate(capacity: 512)
        defer { lastAnswer.deallocate() }
        _ = qt_curl_set_pointer(curl, CURLOPT_WRITEDATA, lastAnswer)
        _ = qt_curl_set_callback(curl, CURLOPT_WRITEFUNCTION, { data, size, items, buffer in
            if let data, let buffer { memcpy(buffer, data, min(511, size * items)); buffer.assumingMemoryBound(to: UInt8.self)[min(511, size * items)] = 0 }
            return size * items
        })
        let start = DispatchTime.now().uptimeNanoseconds
        for index in 0..<count {
            let side = index % 2 == 0 ? "BUY" : "SELL"
            let query = "symbol=\(symbol)&side=\(side)&type=MARKET&quantity=\(quantity.plainString)&newClientOrderId=\(idPrefix)\(index)"
                + "&newOrderRespType=RESULT&recvWindow=5000&timestamp=\(Int64(Date().timeIntervalSince1970 * 1000))"
            let url = "\(baseURL)/fapi/v1/order?\(query)&signature=\(RequestSigner.signature(of: query, secret: credentials.secret))"
            let status = url.withCString { qt_curl_set_pointer(curl, CURLOPT_URL, $0); return curl_easy_perform(curl) }
            var code = 0
            _ = qt_curl_get_long(curl, CURLINFO_RESPONSE_CODE, &code)
            guard status == CURLE_OK, code == 200 else {
                throw ExchangeError.unavailable("raw order \(index): curl \(status.rawValue), HTTP \(code) \(String(cString: lastAnswer))")
            }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
