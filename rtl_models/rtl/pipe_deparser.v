`default_nettype none
// pipe_deparser: packet output, verdict and punt (docs/pipeline.md section 7).
//
// PHVs leaving the last stage (final pass) are queued as records (window, head, end,
// zero_from, metadata, the punt containers' values); DEPARSER_CYCLES after a PHV leaves
// the stages its first output beat can go out. The packet is positions [head, end):
// position p from WIN[H + p] if p < W, else from the payload FIFO (original byte p) if
// p < min(zero_from, pkt_len), else 0. punt_reason != 0: the packet goes to m_axis_punt
// behind the punt header (magic "PT", version 1, n, reason, ingress_ifindex, rx_queue,
// flags bit 0 = fault, n containers); otherwise to m_axis with
// m_axis_tuser = {redirect[31:0], verdict[31:0]} (every verdict, drops included, as
// BPF_PROG_TEST_RUN reports packet_out; a NIC would discard drops here). The payload
// beats of every packet are consumed, used or not. One beat per cycle, back to back.
module pipe_deparser #(
    parameter NUM_CONTAINERS = 32,    // C
    parameter PREDICATE_BITS = 64,    // P
    parameter WINDOW_BYTES = 256,     // W
    parameter WINDOW_HEADROOM = 64,   // H
    parameter BUS_BITS = 512,         // AXI-Stream data width
    parameter PUNT_CONTAINERS = 8,    // containers a punt header can carry
    parameter DEPARSER_CYCLES = 2,    // last stage out to first output beat, >= 2
    parameter OUT_FIFO_DEPTH = 64,    // records (packets) queued, a power of two
    parameter IMAGE_DIR = "."         // directory of deparser.hex
) (
    input  wire                  clk,
    input  wire                  rst,
    input  wire                  in_valid,
    input  wire [PHV_BITS-1:0]   in_phv,
    input  wire [BUS_BITS-1:0]   pay_data,
    input  wire                  pay_valid,
    output wire                  pay_ready,        // pops a payload beat
    output reg  [BUS_BITS-1:0]   m_axis_tdata,
    output reg  [BUS_BITS/8-1:0] m_axis_tkeep,
    output reg                   m_axis_tvalid,
    input  wire                  m_axis_tready,
    output reg                   m_axis_tlast,
    output reg  [63:0]           m_axis_tuser,     // {redirect, verdict}
    output reg  [BUS_BITS-1:0]   m_axis_punt_tdata,
    output reg  [BUS_BITS/8-1:0] m_axis_punt_tkeep,
    output reg                   m_axis_punt_tvalid,
    input  wire                  m_axis_punt_tready,
    output reg                   m_axis_punt_tlast,
    output wire                  pkt_done,         // a packet has left (frees a credit)
    // image port: deparser word img_addr (img_mem 6)
    input  wire                  img_valid,
    input  wire [2:0]            img_mem,
    input  wire [7:0]            img_addr,
    input  wire [255:0]          img_data
);
`include "pipe_defs.vh"
`ifndef SYNTHESIS
`include "pipe_files.vh"
`endif
    localparam BB = BUS_BITS / 8;
    localparam K0 = WINDOW_BYTES / BB;           // payload beat 0 holds positions K0*BB..
    localparam PC1 = PUNT_CONTAINERS > 0 ? PUNT_CONTAINERS : 1;
    localparam HDR_BYTES = 16 + 8 * PC1;
    localparam REC_BITS = WIN_BITS + 3 * POS_BITS + 16 + 5 * 32 + 1 + 64 * PC1;
    // record fields
    localparam R_HEAD = WIN_BITS;
    localparam R_END = R_HEAD + POS_BITS;
    localparam R_ZF = R_END + POS_BITS;
    localparam R_LEN = R_ZF + POS_BITS;
    localparam R_VERDICT = R_LEN + 16;
    localparam R_REDIRECT = R_VERDICT + 32;
    localparam R_PUNT = R_REDIRECT + 32;
    localparam R_INGRESS = R_PUNT + 32;
    localparam R_QUEUE = R_INGRESS + 32;
    localparam R_FAULT = R_QUEUE + 32;
    localparam R_PVALS = R_FAULT + 1;

    reg [31:0] dep_mem [0:PC1];

    always @(posedge clk)
        if (img_valid && img_mem == 3'd6 && img_addr <= PUNT_CONTAINERS)
            dep_mem[img_addr] <= img_data[31:0];

    wire [32*PC1-1:0] dep_words;
    genvar g;
    generate
        for (g = 0; g < PC1; g = g + 1) begin : g_word
            assign dep_words[32 * g +: 32] = dep_mem[g + 1];
        end
    endgenerate

    // -- records ----------------------------------------------------------------------------
    wire d_valid;
    wire [PHV_BITS-1:0] d_phv;
    pipe_delay #(.WIDTH(PHV_BITS), .CYCLES(DEPARSER_CYCLES - 2)) pad (
        .clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_phv),
        .out_valid(d_valid), .out_data(d_phv)
    );

    reg [REC_BITS-1:0] rec_in;
    reg [RD_BITS-1:0] rd;
    reg [7:0] n_punt;
    integer i, m;
    always @* begin
        rd = phv_read_bus(d_phv);
        rec_in = 0;
        rec_in[0 +: WIN_BITS] = d_phv[PHV_WIN +: WIN_BITS];
        rec_in[R_HEAD +: POS_BITS] = d_phv[PHV_HEAD +: POS_BITS];
        rec_in[R_END +: POS_BITS] = d_phv[PHV_END +: POS_BITS];
        rec_in[R_ZF +: POS_BITS] = d_phv[PHV_ZERO_FROM +: POS_BITS];
        rec_in[R_LEN +: 16] = d_phv[PHV_PKT_LEN +: 16];
        rec_in[R_VERDICT +: 32] = d_phv[PHV_VERDICT +: 32];
        rec_in[R_REDIRECT +: 32] = d_phv[PHV_REDIRECT +: 32];
        rec_in[R_PUNT +: 32] = d_phv[PHV_PUNT +: 32];
        rec_in[R_INGRESS +: 32] = d_phv[PHV_INGRESS +: 32];
        rec_in[R_QUEUE +: 32] = d_phv[PHV_QUEUE +: 32];
        rec_in[R_FAULT] = d_phv[PHV_FAULT];
        for (m = 0; m < PUNT_CONTAINERS; m = m + 1)
            if (dep_words[32 * m + 7])
                rec_in[R_PVALS + 64 * m +: 64] = rd[64 * dep_words[32 * m +: 6] +: 64];
    end

    integer n;
    always @* begin
        n_punt = 0;
        for (n = 0; n < PUNT_CONTAINERS; n = n + 1)
            if (dep_words[32 * n + 7])
                n_punt = n_punt + 1'b1;
    end

    wire [REC_BITS-1:0] r;
    wire r_valid;
    reg r_pop;
    pipe_fifo #(.WIDTH(REC_BITS), .DEPTH(OUT_FIFO_DEPTH)) records (
        .clk(clk), .rst(rst), .in_data(rec_in), .in_valid(d_valid), .in_ready(),
        .out_data(r), .out_valid(r_valid), .out_ready(r_pop), .count()
    );
    assign pkt_done = r_pop;

    // -- beats ------------------------------------------------------------------------------
    reg [15:0] j_reg, fetched_reg;
    reg drain_reg;
    reg [BUS_BITS-1:0] last_reg, prev_reg;

    wire [WIN_BITS-1:0] r_win = r[0 +: WIN_BITS];
    wire signed [31:0] head = $signed(r[R_HEAD +: POS_BITS]);
    wire signed [31:0] end_p = $signed(r[R_END +: POS_BITS]);
    wire signed [31:0] zf = $signed(r[R_ZF +: POS_BITS]);
    wire signed [31:0] len = {16'd0, r[R_LEN +: 16]};
    wire punt = r[R_PUNT +: 32] != 0;
    wire signed [31:0] hdr_len = punt ? 16 + 8 * n_punt : 0;
    wire signed [31:0] out_len = hdr_len + end_p - head;
    wire signed [31:0] q0 = j_reg * BB;
    wire signed [31:0] p_lo = head - hdr_len + q0;
    wire last = q0 + BB >= out_len;
    wire signed [31:0] lim = zf < len ? zf : len;
    wire signed [31:0] nf = len > K0 * BB ? (len + BB - 1) / BB - K0 : 0;
    wire [HDR_BYTES*8-1:0] hdr = {r[R_PVALS +: 64 * PC1], 15'd0, r[R_FAULT],
                                  r[R_QUEUE +: 16], r[R_INGRESS +: 32], r[R_PUNT +: 32],
                                  n_punt, 8'd1, 8'h54, 8'h50};

    reg signed [31:0] lo_p, hi_p, rlo, rhi, big_l, lo_idx;
    reg need, can_emit, use_pay, pop_pay;
    reg [3*BUS_BITS-1:0] fifo_vec;
    reg [BUS_BITS-1:0] fifo_lanes, win_lanes, hdr_lanes, data;
    reg [BB-1:0] keep;
    reg [8*HDR_BYTES+WIN_BITS-1:0] win_ext;
    reg signed [31:0] q, p;
    reg out_ready;

    always @* begin
        lo_p = p_lo;
        if (lo_p < head) lo_p = head;
        if (lo_p < WINDOW_BYTES) lo_p = WINDOW_BYTES;
        hi_p = p_lo + BB;
        if (hi_p > end_p) hi_p = end_p;
        if (hi_p > lim) hi_p = lim;
        need = lo_p < hi_p;
        rlo = lo_p / BB;
        rhi = (hi_p - 1) / BB;
        big_l = K0 + fetched_reg - 1;
        use_pay = 1'b0;
        can_emit = 1'b0;
        lo_idx = big_l - 1;
        if (!need) begin
            can_emit = 1'b1;
        end else if (rhi <= big_l) begin
            can_emit = 1'b1;
        end else if (rhi == big_l + 1 && rlo >= big_l && pay_valid) begin
            can_emit = 1'b1;
            use_pay = 1'b1;
            lo_idx = big_l;
        end
        out_ready = punt ? (!m_axis_punt_tvalid || m_axis_punt_tready)
                         : (!m_axis_tvalid || m_axis_tready);
        // payload pops: the beat used by an emitted beat, a beat still ahead of the packet
        // window, or (draining) what the packet left unused
        pop_pay = 1'b0;
        r_pop = 1'b0;
        if (r_valid) begin
            if (drain_reg) begin
                pop_pay = pay_valid && fetched_reg < nf;
                r_pop = fetched_reg >= nf;
            end else if (can_emit) begin
                pop_pay = use_pay && out_ready;
                r_pop = out_ready && last && fetched_reg + pop_pay >= nf;
            end else begin
                pop_pay = pay_valid && fetched_reg < nf;
            end
        end
    end
    assign pay_ready = pop_pay;
    wire emit = r_valid && !drain_reg && can_emit && out_ready;

    always @(posedge clk) begin
        if (pop_pay) begin
            prev_reg <= last_reg;
            last_reg <= pay_data;
        end
        if (rst) begin
            j_reg <= 0;
            fetched_reg <= 0;
            drain_reg <= 1'b0;
        end else begin
            if (r_pop) begin
                j_reg <= 0;
                fetched_reg <= 0;
                drain_reg <= 1'b0;
            end else begin
                if (pop_pay)
                    fetched_reg <= fetched_reg + 1'b1;
                if (emit) begin
                    j_reg <= j_reg + 1'b1;
                    if (last)
                        drain_reg <= 1'b1;
                end
            end
        end
    end

    // -- output registers -------------------------------------------------------------------
    // the beat's bytes, assembled at the clock edge of an emission (see pipe_alu)
    always @(posedge clk) begin
        if (emit) begin
            fifo_vec = use_pay ? {pay_data, last_reg, {BUS_BITS{1'b0}}}
                               : {last_reg, prev_reg, {BUS_BITS{1'b0}}};
            fifo_lanes = need ? fifo_vec >> (8 * (p_lo - lo_idx * BB + BB)) : {BUS_BITS{1'b0}};
            win_ext = {r_win, {(8 * HDR_BYTES){1'b0}}};
            win_lanes = win_ext >> (8 * (WINDOW_HEADROOM + p_lo + HDR_BYTES));
            hdr_lanes = hdr >> (8 * q0);
            data = 0;
            keep = 0;
            for (i = 0; i < BB; i = i + 1) begin
                q = q0 + i;
                p = p_lo + i;
                if (q < out_len) begin
                    keep[i] = 1'b1;
                    if (q < hdr_len)
                        data[8 * i +: 8] = hdr_lanes[8 * i +: 8];
                    else if (p < WINDOW_BYTES)
                        data[8 * i +: 8] = win_lanes[8 * i +: 8];
                    else if (p < lim)
                        data[8 * i +: 8] = fifo_lanes[8 * i +: 8];
                end
            end
        end
        if (rst) begin
            m_axis_tvalid <= 1'b0;
            m_axis_punt_tvalid <= 1'b0;
        end else begin
            if (m_axis_tready)
                m_axis_tvalid <= 1'b0;
            if (m_axis_punt_tready)
                m_axis_punt_tvalid <= 1'b0;
            if (emit && !punt) begin
                m_axis_tvalid <= 1'b1;
                m_axis_tdata <= data;
                m_axis_tkeep <= keep;
                m_axis_tlast <= last;
                m_axis_tuser <= {r[R_REDIRECT +: 32], r[R_VERDICT +: 32]};
            end
            if (emit && punt) begin
                m_axis_punt_tvalid <= 1'b1;
                m_axis_punt_tdata <= data;
                m_axis_punt_tkeep <= keep;
                m_axis_punt_tlast <= last;
            end
        end
    end

`ifndef SYNTHESIS
    integer k;
    initial begin
        if (BUS_BITS % 8 != 0 || DEPARSER_CYCLES < 2 || PUNT_CONTAINERS > 8) begin
            $display("pipe_deparser: BUS_BITS %0d (a multiple of 8), DEPARSER_CYCLES %0d (>= 2), PUNT_CONTAINERS %0d (<= 8)",
                     BUS_BITS, DEPARSER_CYCLES, PUNT_CONTAINERS);
            $finish;
        end
        for (k = 0; k <= PC1; k = k + 1)
            dep_mem[k] = 0;
        if (file_exists(image_file("deparser.hex")))
            $readmemh(image_file("deparser.hex"), dep_mem, 0, PUNT_CONTAINERS);
    end
`endif
endmodule
